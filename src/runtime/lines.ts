// Newline-delimited text over a stream (init's status pipe, the daemon's protocol): chunks end
// anywhere, so a line is handled only once its newline has come.

export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (line: string) => void) {}

  /** Adds a chunk and hands each line it completes to onLine, without its newline. */
  push(text: string): void {
    this.rest += text;
    let nl: number;
    while ((nl = this.rest.indexOf('\n')) >= 0) {
      const line = this.rest.slice(0, nl);
      this.rest = this.rest.slice(nl + 1);
      this.onLine(line);
    }
  }

  /** The text after the last newline, not handed out yet. */
  get pending(): string {
    return this.rest;
  }

  discard(): void {
    this.rest = '';
  }
}

// The exposure table: the points (0–10 scale) each rule adds to a policy's score when it
// fires at full badness. The one place weights live; docs/audit.md is generated from it.
//
// Calibration: 10 is a sandbox that isolates nothing. A missing protection weighs at least
// as much as every partial weakness of it together (no seccomp ≥ all escape groups + ABIs;
// no Landlock ≥ every Landlock weakness), so removing a protection never lowers the score.
// Rules of weight 0 are advice (info, performance) and never move the score.
export const EXPOSURE_WEIGHTS: Readonly<Record<string, number>> = {
  'STK-FS-001': 2.0,
  'STK-FS-002': 2.0,
  'STK-FS-003': 3.0,
  'STK-FS-004': 0.2,
  'STK-FS-005': 1.5,
  'STK-FS-006': 0.5,
  'STK-FS-007': 0.2,
  'STK-FS-008': 0,
  'STK-OUT-001': 1.0,
  'STK-DEV-001': 1.0,
  'STK-ID-001': 1.5,
  'STK-ID-002': 0,
  'STK-ID-003': 0,
  'STK-CAP-001': 5.0,
  'STK-CAP-002': 2.0,
  'STK-CAP-003': 1.0,
  'STK-CAP-004': 1.0,
  'STK-NET-001': 4.0,
  'STK-NET-002': 1.0,
  'STK-NET-003': 1.5,
  'STK-NET-004': 0,
  'STK-NET-005': 1.0,
  'STK-SEC-001': 3.0,
  'STK-SEC-002': 0.6,
  'STK-SEC-010': 0.5,
  'STK-SEC-011': 0.2,
  'STK-SEC-012': 0.3,
  'STK-SEC-013': 0.2,
  'STK-SEC-014': 0.2,
  'STK-SEC-015': 0.3,
  'STK-SEC-016': 0.1,
  'STK-SEC-017': 0.1,
  'STK-SEC-018': 0.05,
  'STK-SEC-019': 0.05,
  'STK-SEC-020': 0.3,
  'STK-SEC-021': 0.1,
  'STK-SEC-030': 0,
  'STK-LL-001': 0.6,
  'STK-LL-002': 0.3,
  'STK-LL-003': 0.3,
  'STK-LIM-001': 0.5,
  'STK-LIM-002': 0.4,
  'STK-LIM-003': 0.1,
  'STK-LIM-004': 0.1,
  'STK-LIM-005': 0.1,
  'STK-TIME-001': 0.3,
  'STK-TIME-002': 0.2,
  'STK-ENV-001': 1.0,
  'STK-ENV-002': 0.2,
};

/** A protection's own rule and the rules about weaknesses of it when present: the first must weigh at least the others together. */
export const ABSENT_VERSUS_WEAK: Readonly<Record<string, readonly string[]>> = {
  'STK-SEC-001': ['STK-SEC-002', 'STK-SEC-010', 'STK-SEC-011', 'STK-SEC-012', 'STK-SEC-013', 'STK-SEC-014', 'STK-SEC-015', 'STK-SEC-016', 'STK-SEC-017', 'STK-SEC-018', 'STK-SEC-019', 'STK-SEC-020', 'STK-SEC-021'],
  'STK-LL-001': ['STK-LL-002', 'STK-LL-003'],
};

/** Levels after systemd-analyze security: the first whose threshold the score reaches. */
export const LEVELS: readonly { min: number; name: string }[] = [
  { min: 10, name: 'DANGEROUS' },
  { min: 9, name: 'UNSAFE' },
  { min: 7.5, name: 'EXPOSED' },
  { min: 5, name: 'MEDIUM' },
  { min: 1, name: 'OK' },
  { min: 0.1, name: 'SAFE' },
  { min: 0, name: 'PERFECT' },
];

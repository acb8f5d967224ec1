// The exposure score: the points of the findings, one decimal, capped at 10, and its level.
import { LEVELS } from './weights.js';

export function scoreLevel(points: number): { score: number; level: string } {
  const score = Math.min(10, Math.round(points * 10) / 10);
  return { score, level: levelOf(score) };
}

export function levelOf(score: number): string {
  return LEVELS.find((l) => score >= l.min)!.name;
}

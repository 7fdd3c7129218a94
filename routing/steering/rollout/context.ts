/** One `decide`'s working state, the phase predicates every part reads, and the transition log. */
import type { RolloutConfig } from './config.js';
import type { RolloutParameters } from './parameters.js';
import type { Phase, RolloutState, Transition, TransitionKind } from './state.js';

const TRANSITIONS_KEPT = 20;

export interface Ctx {
  readonly s: RolloutState;
  readonly config: RolloutConfig;
  readonly P: RolloutParameters;
  readonly mayAdvance: boolean;
  readonly out: Transition[];
  readonly now: number;
}

/** Read through a call, so that TypeScript does not narrow the phase across the calls that change it. */
export const rolledBack = (s: RolloutState): boolean => s.phase === 'RolledBack';
export const active = (p: Phase): boolean => p === 'Mirroring' || p === 'Progressing' || p === 'Paused';
/** The phase whose rules apply: a paused run is judged as the phase it resumes to. */
export const judgedPhase = (s: RolloutState): Phase => (s.phase === 'Paused' ? s.resumeTo! : s.phase);

export function record(ctx: Ctx, kind: TransitionKind, from: Phase, reason: string): void {
  const { s } = ctx;
  const t: Transition = { at: ctx.now, kind, from, to: s.phase, step: s.step, weight: s.weight, reason };
  ctx.out.push(t);
  s.transitions.push(t);
  if (s.transitions.length > TRANSITIONS_KEPT) s.transitions.splice(0, s.transitions.length - TRANSITIONS_KEPT);
}

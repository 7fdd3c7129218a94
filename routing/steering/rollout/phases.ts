/**
 * The state machine (docs/rollouts.md#phases-and-actions): following an edited config, rolling
 * back, promoting, advancing a step, and the action annotation's pause, resume, abort, promote and retry.
 */
import { record, active, judgedPhase, type Ctx } from './context.js';
import { firstPhase, freshChart, freshCusum, freshEvidence } from './state.js';
import { stepName } from './text.js';

/** A config edited mid-run: keep the step inside `steps`, leave a mirror phase that is gone, follow the step's weight. */
export function followConfig(ctx: Ctx): void {
  const { s, config } = ctx;
  const phase = judgedPhase(s);
  if (phase === 'Mirroring' && !config.mirror) {
    s.step = 0;
    s.mirrorPercent = 0;
    if (s.phase === 'Paused') s.resumeTo = 'Progressing';
    else s.phase = 'Progressing';
  }
  if (phase === 'Mirroring' && config.mirror) s.mirrorPercent = config.mirror.percent;
  if (s.step >= config.steps.length) s.step = config.steps.length - 1;
  if (active(s.phase) && s.step >= 0) s.weight = config.steps[s.step]!;
}

function rollBack(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  const from = s.phase;
  s.phase = 'RolledBack';
  s.resumeTo = null;
  s.weight = 0;
  s.mirrorPercent = 0;
  s.pendingRollback = null;
  record(ctx, 'RolloutRolledBack', from, reason);
}

/** Roll back now, or, while Paused, at `resume`. */
export function mustRollBack(ctx: Ctx, reason: string): void {
  if (ctx.s.phase === 'Paused') ctx.s.pendingRollback ??= reason;
  else rollBack(ctx, reason);
}

function promote(ctx: Ctx, reason: string): void {
  const { s, config } = ctx;
  const from = s.phase;
  s.phase = 'Promoted';
  s.resumeTo = null;
  s.step = config.steps.length - 1;
  s.weight = config.steps[s.step]!;
  s.mirrorPercent = 0;
  s.pendingRollback = null;
  record(ctx, 'RolloutPromoted', from, `${reason}; write traffic: ${s.weight} for ${config.canary} into the SeldonDeployment`);
}

/** To the next step; reaching a 100% step, or passing the last one, is promotion. */
export function advance(ctx: Ctx, reason: string): void {
  const { s, config } = ctx;
  const next = s.step + 1;
  if (next >= config.steps.length || config.steps[next] === 100) {
    if (next < config.steps.length) s.step = next;
    promote(ctx, reason);
    return;
  }
  const from = s.phase;
  s.phase = 'Progressing';
  s.step = next;
  s.weight = config.steps[next]!;
  s.mirrorPercent = 0;
  Object.assign(s, freshEvidence(ctx.now));
  record(ctx, 'RolloutAdvanced', from, `${reason}; ${config.canary} now at ${s.weight}%`);
}

const ACTIONS = ['pause', 'resume', 'abort', 'promote', 'retry'];

/**
 * The action annotation acts when its value changes. Its first word is the action, so
 * `retry 2` after `retry` acts again. A replica without the store acts only on pause and abort
 * and leaves the others for the one that has it.
 */
export function applyAction(ctx: Ctx, raw: string): void {
  const { s, config } = ctx;
  const value = raw.trim();
  if (value === s.action) return;
  const word = (value.split(/\s+/)[0] ?? '').toLowerCase();
  if (!ctx.mayAdvance && word !== '' && word !== 'pause' && word !== 'abort') return;
  s.action = value;
  s.actionNote = null;
  const ignored = (why: string) => {
    s.actionNote = `action "${value}" ignored: ${why}`;
  };
  const by = `by seldon.io/gateway-rollout-action "${value}"`;
  switch (word) {
    case '':
      return;
    case 'pause':
      if (s.phase !== 'Mirroring' && s.phase !== 'Progressing') return ignored(`the run is ${s.phase}`);
      s.resumeTo = s.phase;
      s.phase = 'Paused';
      return record(ctx, 'RolloutPaused', s.resumeTo, `paused ${by} at ${stepName(config, s.step)}; the weight holds until resume`);
    case 'resume': {
      if (s.phase !== 'Paused') return ignored(`the run is ${s.phase}, not Paused`);
      s.phase = s.resumeTo!;
      s.resumeTo = null;
      record(ctx, 'RolloutResumed', 'Paused', `resumed ${by} at ${stepName(config, s.step)}`);
      if (s.pendingRollback) rollBack(ctx, `${s.pendingRollback} (met while paused)`);
      return;
    }
    case 'abort':
      if (!active(s.phase)) return ignored(`the run is ${s.phase}`);
      return rollBack(ctx, `aborted ${by} at ${stepName(config, s.step)}`);
    case 'promote':
      if (s.phase === 'Promoted') return ignored('the run is already Promoted');
      return promote(ctx, `promoted ${by} from ${s.phase} at ${stepName(config, s.step)}`);
    case 'retry': {
      if (s.phase !== 'RolledBack') return ignored(`only a RolledBack run is retried; this one is ${s.phase}`);
      const first = firstPhase(config);
      Object.assign(s, first, freshEvidence(ctx.now), {
        attempt: s.attempt + 1,
        resumeTo: null,
        startedAt: ctx.now,
        agreement: { compared: 0, agree: 0 },
        intervals: { judged: 0, failed: 0 },
        cusum: freshCusum(),
        burst: freshChart(),
        pendingRollback: null,
        heldStep: null,
      });
      return record(ctx, 'RolloutRetried', 'RolledBack', `retried ${by}: attempt ${s.attempt} starts at ${stepName(config, s.step)}`);
    }
    default:
      return ignored(`not one of ${ACTIONS.join(', ')}`);
  }
}

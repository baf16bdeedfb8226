// Package degrade decides a DegradationPlan's level from telemetry, as a pure function of the
// previous State, the measured values and the time. Applying a level to requests is the
// gateway's job (internal/gateway); this package only decides it.
//
// Rules, per trigger and then per plan:
//
//   - A trigger trips once its value has been above `above` continuously for its level's
//     `for` (immediately when `for` is unset). A tripped trigger stays tripped until its
//     value falls to above × (1 − recoveryMargin/100) or lower (hysteresis).
//   - A level is active while any of its triggers is tripped; the wanted level is the
//     highest active one (0 when none is).
//   - The level steps up to the wanted level at once, and steps down to it only once the
//     current level has been in force for `cooldown`.
//   - Missing data neither escalates nor de-escalates: a trigger without a value keeps its
//     tripped state and its above-since time, and cannot trip or clear at that step. A gap
//     does not restart a `for` period either: the period is measured from the first value
//     above the threshold to the first later value above it that completes it.
//   - A manual override wins over telemetry. When it is removed, the level telemetry wants
//     applies at once (the cooldown guards against flapping telemetry, not against people).
package degrade

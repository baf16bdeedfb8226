// Package schedule decides which RateLimitPolicy schedule is in force at an instant, the
// limits that follow from it and when that next changes. Everything here is pure: the time
// is an argument, so a controller requeues at Result.Next and tests step through days and
// daylight-saving changes without a clock.
//
// Windows are wall-clock times in an IANA zone. A window belongs to the day it starts on:
// {days: [Fri], start: "22:00", end: "06:00"} runs from Friday 22:00 to Saturday 06:00. A
// boundary HH:MM on a day is the first instant of that day at which the wall clock reads
// HH:MM or later, which settles both daylight-saving cases:
//
//   - spring forward: a time the clock skips (02:30 when 02:00 jumps to 03:00) resolves to
//     the first instant after the gap (03:00 in the new offset);
//   - fall back: a time the clock shows twice (01:30 when 02:00 falls back to 01:00)
//     resolves to its first occurrence, in the earlier (summer) offset. A window ending then
//     is an hour shorter than on other days; one starting then an hour longer.
package schedule

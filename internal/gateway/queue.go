package gateway

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

// The LeakyBucket queue. A client's bucket (memory, or shared through Redis) decides when each
// of its requests may go: ratelimit.Decision.Wait, the time until the requests ahead of it have
// drained. The replica that received the request holds it here until then. The queue is
// bounded per replica (Queue.MaxQueued over every client) and fair across clients:
//
//   - Each client has its own sub-queue, released at its own bucket's rate: a heavy client's
//     backlog never delays a light client's turns.
//   - When the queue is full, a newcomer takes the place of the newest, least critical request
//     of the client with the most requests waiting (longest-queue drop), which gets 429; a
//     newcomer whose own client already has as many waiting is refused instead. So one heavy
//     client cannot fill the queue: the light clients' requests push its backlog out.
//   - Within a client's sub-queue the turns its bucket gave out go to the most critical
//     requests first (Critical, then Standard, then Sheddable), each class in arrival order:
//     a Critical request that arrives behind Standard ones takes the earliest turn and they
//     move back one. (A Standard request can so wait longer than maxWait, by the turns the
//     Critical requests of its own client took.)
//
// Waiting is on the gateway's timers (Options.Timers), so tests step a fake clock.

// reasonQueueFull is the rate_limited_total reason of a request pushed out of a full queue.
const reasonQueueFull = "queue_full"

// errDropped says a waiting request was pushed out of a full queue.
var errDropped = errors.New("pushed out of a full queue")

// fairQueue holds the requests waiting for their turn on one replica.
type fairQueue struct {
	max int

	mu      sync.Mutex
	n       int
	seq     uint64
	clients map[string][]*waiter
}

// waiter is one request waiting for its turn.
type waiter struct {
	client string
	class  class
	seq    uint64
	// at is when it may go (guarded by the queue's mu); it moves when a more critical request
	// of the same client takes its turn.
	at time.Time
	// dropped says it was pushed out of the full queue (guarded by mu).
	dropped bool
	// moved is signalled (buffered, never blocks) when at or dropped changes.
	moved chan struct{}
}

func newFairQueue(max int64) *fairQueue {
	return &fairQueue{max: int(max), clients: map[string][]*waiter{}}
}

// less orders the waiters of one client: more critical first, then earlier.
func (w *waiter) less(o *waiter) bool {
	if w.class != o.class {
		return w.class < o.class
	}
	return w.seq < o.seq
}

func (w *waiter) signal() {
	select {
	case w.moved <- struct{}{}:
	default:
	}
}

// push queues a request of client with class that its bucket lets go at at. It returns nil
// when the queue is full and the request may not push another out.
func (q *fairQueue) push(client string, cl class, at time.Time) *waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := &waiter{client: client, class: cl, at: at, moved: make(chan struct{}, 1)}
	q.seq++
	w.seq = q.seq
	if q.n >= q.max && !q.dropFor(w) {
		return nil
	}
	q.n++
	q.clients[client] = append(q.clients[client], w)
	q.reorder(client)
	return w
}

// dropFor pushes a waiter out of the full queue to make room for w, or reports that w may not
// have one: the victim is the newest least critical waiter of the client with the most
// waiting, unless w's own client has as many (then it is w's own client's, and only a less
// critical one than w).
func (q *fairQueue) dropFor(w *waiter) bool {
	longest, most := "", 0
	for c, ws := range q.clients {
		if len(ws) > most || len(ws) == most && c == w.client {
			longest, most = c, len(ws)
		}
	}
	own := len(q.clients[w.client])
	if own+1 >= most {
		longest = w.client
	}
	ws := q.clients[longest]
	if len(ws) == 0 {
		return false
	}
	vi := 0
	for i, x := range ws {
		if ws[vi].less(x) {
			vi = i
		}
	}
	victim := ws[vi]
	if longest == w.client && !w.less(victim) {
		return false
	}
	q.remove(victim)
	victim.dropped = true
	victim.signal()
	return true
}

// reorder gives the turns of a client's waiters to the most critical first.
func (q *fairQueue) reorder(client string) {
	ws := q.clients[client]
	if len(ws) < 2 {
		return
	}
	turns := make([]time.Time, len(ws))
	for i, w := range ws {
		turns[i] = w.at
	}
	slices.SortFunc(turns, func(a, b time.Time) int { return a.Compare(b) })
	slices.SortFunc(ws, func(a, b *waiter) int {
		if a.less(b) {
			return -1
		}
		return 1
	})
	for i, w := range ws {
		if !w.at.Equal(turns[i]) {
			w.at = turns[i]
			w.signal()
		}
	}
}

// remove takes w out of the queue (mu held); false when it was not in it.
func (q *fairQueue) remove(w *waiter) bool {
	ws := q.clients[w.client]
	i := slices.Index(ws, w)
	if i < 0 {
		return false
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) == 0 {
		delete(q.clients, w.client)
	} else {
		q.clients[w.client] = ws
	}
	q.n--
	return true
}

// wait holds w until its turn, and takes it out of the queue. It returns errDropped when w
// was pushed out of the full queue, or the context's error when the client went away.
func (q *fairQueue) wait(ctx context.Context, w *waiter, now func() time.Time, timers clock.WithDelayedExecution) error {
	for {
		q.mu.Lock()
		if w.dropped {
			q.mu.Unlock()
			return errDropped
		}
		d := w.at.Sub(now())
		if d <= 0 {
			q.remove(w)
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		t := timers.NewTimer(d)
		select {
		case <-t.C():
		case <-w.moved:
		case <-ctx.Done():
			t.Stop()
			q.mu.Lock()
			dropped := !q.remove(w)
			q.mu.Unlock()
			if dropped {
				return errDropped
			}
			return ctx.Err()
		}
		t.Stop()
	}
}

// len is the number of requests waiting.
func (q *fairQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// queuedHeader names the response header that says how long a request waited in the queue.
const queuedHeader = "X-Qwen-Queued-Ms"

// awaitTurn holds an admitted request that its LeakyBucket told to wait (a.wait > 0) in the
// policy's queue until its turn. The time it waited is excluded from the request's latency
// (rec.start moves past it: request_duration_seconds and time_to_first_token_seconds measure
// the gateway and the engine, not the queue), observed in queue_wait_seconds and sent in
// X-Qwen-Queued-Ms. A request pushed out of the full queue gets 429 (its charges refunded); a
// client that leaves while waiting is refunded too and counts as 499.
func (g *Gateway) awaitTurn(ctx context.Context, rw *responseWriter, a *admission, cl class, rec *record) bool {
	p := a.p
	if p.queue == nil {
		return true
	}
	if a.wait <= 0 {
		g.m.queueWait.WithLabelValues(cl.String()).Observe(0)
		rw.Header().Set(queuedHeader, "0")
		return true
	}
	w := p.queue.push(a.key, cl, rec.start.Add(a.wait))
	var err error
	if w == nil {
		err = errDropped
	} else {
		g.m.queued.Inc()
		err = p.queue.wait(ctx, w, g.now, g.timers)
		g.m.queued.Dec()
	}
	now := g.now()
	waited := max(now.Sub(rec.start), 0)
	switch {
	case errors.Is(err, errDropped):
		rq := a.requestQuota() // the quota that asked to wait
		rej := &rejection{reason: reasonQueueFull, t: a.tier, q: rq,
			d: ratelimit.Decision{RetryAfter: a.wait, Reset: a.wait}}
		if rq >= 0 {
			rej.d.Limit = a.tier.quotas[rq].rule.Limit
		}
		rw.Header().Set(queuedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
		writeRateLimited(rw, p.over(a, rej, now, rec)) // Enforce: Shadow policies do not queue
		return false
	case err != nil:
		p.refund(a, now)
		rec.status = statusClientClosed
		return false
	}
	g.m.queueWait.WithLabelValues(cl.String()).Observe(waited.Seconds())
	rec.start = now
	rw.Header().Set(queuedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	return true
}

// statusClientClosed is what a request counts as when its client went away before it was
// served (nginx's 499).
const statusClientClosed = 499

// requestQuota is the index of the tier's request quota (the one a LeakyBucket queues), -1
// if none.
func (a *admission) requestQuota() int {
	for i := range a.tier.quotas {
		if a.tier.quotas[i].kind == kindRequests {
			return i
		}
	}
	return -1
}

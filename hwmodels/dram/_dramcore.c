/* Compiled core of the transaction-level DRAM model: hwmodels/dram/{system,channel,banks}.py in C.
 *
 * The Python modules are the reference; this file follows them function by function (same names, same order of
 * decisions) so that the command trace is identical (tests/test_dram_core.py compares the two on random cases).
 * Differences that cannot change the trace: a bank's `bound` (the earliest cycle it may issue) is the exact earliest
 * cycle of its FR-FCFS walk rather than Python's shortcut lower bound; pending reads/writes are found by scanning the
 * read queue / write buffer and the bank's command queue (where a transaction of that address must be) instead of a
 * dict/set; completions are buffered (tag, added, done, is_write) for the Python wrapper to deliver in order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int64_t i64;
#define INF (((i64)1) << 62)
enum { ACT = 0, PRE = 1, RD = 2, WR = 3, REF = 4, NTYPES = 5 };
#define MAXRAISE 8

typedef struct { i64 row, addr; int is_write, rec; } CmdEntry;      /* a bank command queue entry */
typedef struct { i64 addr, row; int bank, rec; } TransEntry;         /* read queue / write buffer entry */
typedef struct { i64 tag, added; int next; } Waiter;                  /* a read waiting for a burst */
typedef struct { int first, last; } ReadRec;                          /* the waiters of one pending read */
typedef struct { int y, lat; } Raise;
typedef struct { i64 tag, added, done; int is_write; } Done;

typedef struct {
    int n_bank[NTYPES], n_group[NTYPES], n_rank[NTYPES], n_other[NTYPES];
    Raise bank[NTYPES][MAXRAISE], group[NTYPES][MAXRAISE], rank[NTYPES][MAXRAISE], other[NTYPES][MAXRAISE];
} Timing;

struct System;

typedef struct {
    struct System *sys;
    int index;
    int nb, ng, nr, banks, bpg, cmd_cap, trans_cap, hit_limit, dual_cmd;
    i64 read_delay, faw_t, t32aw;
    const Timing *T;
    i64 *tb[NTYPES], *tg[NTYPES], *tr[NTYPES];
    i64 *open_row, *bound;
    int *hits, *q_writes, *qlen, *room, *rq_count, *wb_count, *bank_rank, *bank_group;
    CmdEntry *q;                /* nb x cmd_cap */
    TransEntry *rq, *wb;
    int rq_len, wb_len;
    int rq_eligible, wb_eligible, write_draining, sched_stale, n_cmds, queue_idx;
    /* pending reads */
    ReadRec *recs; int *rec_free; int n_rec_free, n_pending_rd;
    /* four-activate and 32-activate windows, per rank (at most 4 / 32 entries live) */
    i64 *faw; int *faw_len; i64 *aw; int *aw_len;
    /* refresh */
    i64 ref_interval; int ref_simultaneous, next_ref_rank, in_ref, ref_rank;
    int *refq; int refq_head, refq_len, refq_cap;
    i64 next_due;
    /* statistics */
    i64 n_read_cmds, n_write_cmds, n_act, n_pre, n_ref, n_row_hits, read_latency_sum, n_reads_done, n_writes_done;
    i64 last_busy_cycle;
    /* rank background states (channel.py): open banks per rank, the clock the count last went 0 -> 1, and the
       rank-clocks of closed open-intervals */
    int *rank_open; i64 *rank_since; i64 rank_active_closed;
} Channel;

typedef struct { i64 addr, tag; int is_write, ch, bank; i64 row; } InboxEntry;

typedef struct System {
    PyObject_HEAD
    int n_ch;
    Channel *chans;
    Timing T;
    i64 width, clk, admit_due, adm_cycle, adm_count;
    int shift;
    i64 fs[5], fc[5];           /* (stride, count) of ch, ra, bg, ba, ro */
    int bpg;
    InboxEntry *inbox; i64 in_head, in_len, in_cap;
    Waiter *waiters; int n_waiters, waiter_cap, waiter_free;
    int record;
    Done *done; Py_ssize_t n_done, done_cap;
    int log_cmds;                /* record (clk, channel, bank, type) of every command */
    i64 *cmd_log; Py_ssize_t n_logged, log_cap;
    int oom;
    /* a batch (run_batch): completions counted per access in C instead of buffered; bursts generated into the
       inbox as it empties, in submission order (the same inbox sequence as submitting them one by one) */
    int batch;                   /* a batch is running */
    i64 *bt_done;                /* per access: latest completion cycle */
    i64 bt_outstanding;          /* bursts of the batch not yet completed (generated or not) */
    i64 *gen_first, *gen_count;  /* per access: first burst address, bursts */
    i64 gen_n, gen_k, gen_i, gen_rb; int gen_write;  /* accesses, next access, next burst in it, burst bytes */
} System;

static inline i64 max2(i64 a, i64 b) { return a > b ? a : b; }
static inline i64 max3(i64 a, i64 b, i64 c) { return max2(max2(a, b), c); }

/* --- completions ------------------------------------------------------------------------------------------------ */
static void emit(System *s, i64 tag, i64 added, i64 done, int is_write) {
    if (s->batch) {  /* tag = the access's index in the batch */
        if (done > s->bt_done[tag]) s->bt_done[tag] = done;
        s->bt_outstanding--;
        return;
    }
    if (!s->record) return;
    if (s->n_done == s->done_cap) {
        Py_ssize_t cap = s->done_cap ? 2 * s->done_cap : 1024;
        Done *d = PyMem_Realloc(s->done, cap * sizeof(Done));
        if (!d) { s->oom = 1; return; }
        s->done = d; s->done_cap = cap;
    }
    Done *d = &s->done[s->n_done++];
    d->tag = tag; d->added = added; d->done = done; d->is_write = is_write;
}

static void log_command(System *s, i64 clk, int ch, int b, int typ) {
    if (s->n_logged + 4 > s->log_cap) {
        Py_ssize_t cap = s->log_cap ? 2 * s->log_cap : 4096;
        i64 *n = PyMem_Realloc(s->cmd_log, cap * sizeof(i64));
        if (!n) { s->oom = 1; return; }
        s->cmd_log = n; s->log_cap = cap;
    }
    i64 *e = s->cmd_log + s->n_logged;
    e[0] = clk; e[1] = ch; e[2] = b; e[3] = typ;
    s->n_logged += 4;
}

static int new_waiter(System *s, i64 tag, i64 added) {
    int w;
    if (s->waiter_free >= 0) {
        w = s->waiter_free; s->waiter_free = s->waiters[w].next;
    } else {
        if (s->n_waiters == s->waiter_cap) {
            int cap = s->waiter_cap ? 2 * s->waiter_cap : 256;
            Waiter *nw = PyMem_Realloc(s->waiters, cap * sizeof(Waiter));
            if (!nw) { s->oom = 1; return -1; }
            s->waiters = nw; s->waiter_cap = cap;
        }
        w = s->n_waiters++;
    }
    s->waiters[w].tag = tag; s->waiters[w].added = added; s->waiters[w].next = -1;
    return w;
}

/* --- readiness (banks.py) ----------------------------------------------------------------------------------------- */
static i64 act_time(Channel *c, int b) {
    int r = c->bank_rank[b];
    i64 t = max3(c->tb[ACT][b], c->tg[ACT][c->bank_group[b]], c->tr[ACT][r]);
    if (c->faw_len[r] >= 4 && c->faw[r * 4] > t) t = c->faw[r * 4];
    if (c->t32aw && c->aw_len[r] >= 32 && c->aw[r * 32] > t) t = c->aw[r * 32];
    return t;
}

/* DRAMSim3 GetFirstReadyInQueue: index of the entry to serve now, or -1 with bound[b] = the earliest cycle. */
static int scan(Channel *c, int b, i64 clk) {
    int n = c->qlen[b];
    if (!n) { c->bound[b] = INF; return -1; }
    CmdEntry *q = c->q + (size_t)b * c->cmd_cap;
    i64 orow = c->open_row[b];
    if (orow < 0) {
        i64 t = act_time(c, b);
        if (t <= clk) return 0;
        c->bound[b] = t;
        return -1;
    }
    int r = c->bank_rank[b], g = c->bank_group[b];
    int has_hit = 0;
    for (int i = 0; i < n; i++) if (q[i].row == orow) { has_hit = 1; break; }
    i64 best = INF, t_rd = -1, t_wr = -1;
    for (int i = 0; i < n; i++) {
        i64 t;
        if (q[i].row == orow) {
            if (q[i].is_write) {
                int dep = 0;
                for (int j = 0; j < i; j++)
                    if (!q[j].is_write && q[j].addr == q[i].addr) { dep = 1; break; }
                if (dep) continue;  /* read-after-write dependency on the same address */
                if (t_wr < 0) t_wr = max3(c->tb[WR][b], c->tg[WR][g], c->tr[WR][r]);
                t = t_wr;
            } else {
                if (t_rd < 0) t_rd = max3(c->tb[RD][b], c->tg[RD][g], c->tr[RD][r]);
                t = t_rd;
            }
        } else {
            if (i || (c->hits[b] < c->hit_limit && has_hit)) continue;  /* precharge only for the oldest entry */
            t = max2(c->tb[PRE][b], c->tr[PRE][r]);
        }
        if (t <= clk) return i;
        if (t < best) best = t;
    }
    c->bound[b] = best;
    return -1;
}

/* DRAMSim3 GetCommandToIssue: round-robin over bank queues, skipping the rank being refreshed. */
static int next_command(Channel *c, i64 clk, int *out_b) {
    int nb = c->nb, q = c->queue_idx;
    for (int k = 0; k < nb; k++) {
        q = q + 1 == nb ? 0 : q + 1;
        if (c->bound[q] <= clk && !(c->in_ref && c->bank_rank[q] == c->ref_rank)) {
            int i = scan(c, q, clk);
            if (i >= 0) { c->queue_idx = q; *out_b = q; return i; }
        }
    }
    return -2;  /* none (-1 and below are refresh-side commands elsewhere) */
}

static void record_act(Channel *c, int r, i64 clk) {
    i64 *faw = c->faw + r * 4;
    if (c->faw_len[r] && clk >= faw[0]) { memmove(faw, faw + 1, (c->faw_len[r] - 1) * sizeof(i64)); c->faw_len[r]--; }
    if (c->faw_len[r] < 4) faw[c->faw_len[r]++] = clk + c->faw_t;  /* cannot be full: an ACT waited for faw[0] */
    if (c->t32aw) {
        i64 *aw = c->aw + r * 32;
        if (c->aw_len[r] && clk >= aw[0]) { memmove(aw, aw + 1, (c->aw_len[r] - 1) * sizeof(i64)); c->aw_len[r]--; }
        if (c->aw_len[r] < 32) aw[c->aw_len[r]++] = clk + c->t32aw;
    }
}

static void raise_act_bounds(Channel *c, int r, i64 clk) {
    i64 floor = c->tr[ACT][r] > clk + 1 ? c->tr[ACT][r] : clk + 1;
    if (c->faw_len[r] >= 4 && c->faw[r * 4] > floor) floor = c->faw[r * 4];
    for (int b = r * c->banks; b < (r + 1) * c->banks; b++)
        if (c->bound[b] < floor && c->open_row[b] < 0) c->bound[b] = floor;
}

static void update_timing(Channel *c, int typ, int b, int r, i64 clk) {
    const Timing *T = c->T;
    for (int k = 0; k < T->n_bank[typ]; k++) {
        i64 t = clk + T->bank[typ][k].lat, *a = c->tb[T->bank[typ][k].y];
        if (t > a[b]) a[b] = t;
    }
    int g = c->bank_group[b];
    for (int k = 0; k < T->n_group[typ]; k++) {
        i64 t = clk + T->group[typ][k].lat, *a = c->tg[T->group[typ][k].y];
        if (t > a[g]) a[g] = t;
    }
    for (int k = 0; k < T->n_rank[typ]; k++) {
        i64 t = clk + T->rank[typ][k].lat, *a = c->tr[T->rank[typ][k].y];
        if (t > a[r]) a[r] = t;
    }
    if (c->nr > 1) {
        for (int k = 0; k < T->n_other[typ]; k++) {
            i64 t = clk + T->other[typ][k].lat, *a = c->tr[T->other[typ][k].y];
            for (int r2 = 0; r2 < c->nr; r2++)
                if (r2 != r && t > a[r2]) a[r2] = t;
        }
    }
}

/* --- transactions (channel.py) ------------------------------------------------------------------------------------- */
static int find_pending_read(Channel *c, i64 addr, int bank) {
    for (int j = 0; j < c->rq_len; j++) if (c->rq[j].addr == addr) return c->rq[j].rec;
    CmdEntry *q = c->q + (size_t)bank * c->cmd_cap;
    for (int i = 0; i < c->qlen[bank]; i++) if (!q[i].is_write && q[i].addr == addr) return q[i].rec;
    return -1;
}

static int pending_write(Channel *c, i64 addr, int bank) {
    for (int j = 0; j < c->wb_len; j++) if (c->wb[j].addr == addr) return 1;
    CmdEntry *q = c->q + (size_t)bank * c->cmd_cap;
    for (int i = 0; i < c->qlen[bank]; i++) if (q[i].is_write && q[i].addr == addr) return 1;
    return 0;
}

static void done_one(Channel *c, i64 tag, i64 added, i64 done, int is_write) {
    if (is_write) c->n_writes_done++;
    else { c->n_reads_done++; c->read_latency_sum += done - added; }
    if (done > c->last_busy_cycle) c->last_busy_cycle = done;
    emit(c->sys, tag, added, done, is_write);
}

static int can_schedule(Channel *c) {
    int n_wb = c->wb_len;
    if (c->write_draining == 0 && (n_wb >= c->trans_cap || (n_wb > 8 && c->n_cmds == 0))) return 1;
    return (c->write_draining > 0 ? c->wb_eligible : c->rq_eligible) > 0;
}

static void add(Channel *c, i64 addr, int bank, i64 row, int is_write, i64 tag, i64 added) {
    if (is_write) {
        if (!pending_write(c, addr, bank)) {  /* a write to an address already buffered is merged */
            TransEntry *e = &c->wb[c->wb_len++];
            e->addr = addr; e->row = row; e->bank = bank; e->rec = -1;
            c->wb_count[bank]++;
            if (c->room[bank]) c->wb_eligible++;
        }
        done_one(c, tag, added, added + 1, 1);
    } else if (pending_write(c, addr, bank)) {  /* read served from the write buffer */
        done_one(c, tag, added, added + 1, 0);
    } else {
        System *s = c->sys;
        int rec = find_pending_read(c, addr, bank);
        int w = new_waiter(s, tag, added);
        if (w < 0) return;
        if (rec < 0) {
            rec = c->rec_free[--c->n_rec_free];
            c->recs[rec].first = c->recs[rec].last = w;
            c->n_pending_rd++;
            TransEntry *e = &c->rq[c->rq_len++];
            e->addr = addr; e->row = row; e->bank = bank; e->rec = rec;
            c->rq_count[bank]++;
            if (c->room[bank]) c->rq_eligible++;
        } else {
            s->waiters[c->recs[rec].last].next = w;
            c->recs[rec].last = w;
        }
    }
    if (c->sched_stale || can_schedule(c)) {
        c->sched_stale = 1;
        if (added < c->next_due) c->next_due = added;
    }
}

static int finish_refresh(Channel *c, i64 clk, int *out_b) {
    int r = c->refq[c->refq_head];
    if (!c->in_ref) { c->in_ref = 1; c->ref_rank = r; }
    int ready = 0;
    for (int b = r * c->banks; b < (r + 1) * c->banks; b++) {
        if (c->open_row[b] >= 0) {
            if (max2(c->tb[PRE][b], c->tr[PRE][r]) <= clk) { *out_b = b; return -PRE - 1; }
        } else if (max2(c->tb[REF][b], c->tr[REF][r]) <= clk) {
            ready++;
        }
    }
    if (ready == c->banks) { *out_b = r * c->banks; return -REF - 1; }
    return -100;
}

static i64 refresh_bound(Channel *c) {
    int r = c->refq[c->refq_head];
    i64 lo = INF, hi = 0;
    int any_open = 0;
    for (int b = r * c->banks; b < (r + 1) * c->banks; b++) {
        if (c->open_row[b] >= 0) {  /* an open bank must precharge first: the earliest such precharge */
            any_open = 1;
            i64 t = max2(c->tb[PRE][b], c->tr[PRE][r]);
            if (t < lo) lo = t;
        }
        hi = max2(hi, max2(c->tb[REF][b], c->tr[REF][r]));  /* all closed: the last bank ready to refresh */
    }
    return any_open ? lo : hi;
}

static int issue(Channel *c, int b, int i, i64 clk) {
    int r = c->bank_rank[b], typ, is_write = 0;
    i64 row = 0;
    int rec = -1;
    CmdEntry *q = c->q + (size_t)b * c->cmd_cap;
    if (i < 0) {
        typ = -i - 1;
    } else {
        row = q[i].row; is_write = q[i].is_write; rec = q[i].rec;
        i64 orow = c->open_row[b];
        typ = orow < 0 ? ACT : (row == orow ? (is_write ? WR : RD) : PRE);
    }
    if (typ == RD || typ == WR) {
        if (c->qlen[b] == c->cmd_cap) {  /* the bank's queue regains room: its waiting transactions become eligible */
            c->rq_eligible += c->rq_count[b];
            c->wb_eligible += c->wb_count[b];
            c->room[b] = 1;
        }
        memmove(q + i, q + i + 1, (size_t)(c->qlen[b] - i - 1) * sizeof(CmdEntry));
        c->qlen[b]--;
        if (is_write) c->q_writes[b]--;
        c->n_cmds--;
        if (c->hits[b]) c->n_row_hits++;
        c->hits[b]++;
        if (typ == RD) {
            System *s = c->sys;
            c->n_read_cmds++;
            i64 done = clk + c->read_delay;
            if (done > c->last_busy_cycle) c->last_busy_cycle = done;
            int w = c->recs[rec].first;
            while (w >= 0) {
                Waiter *wt = &s->waiters[w];
                int nxt = wt->next;
                c->n_reads_done++;
                c->read_latency_sum += done - wt->added;
                emit(s, wt->tag, wt->added, done, 0);
                wt->next = s->waiter_free; s->waiter_free = w;
                w = nxt;
            }
            c->rec_free[c->n_rec_free++] = rec;
            c->n_pending_rd--;
        } else {
            c->n_write_cmds++;
        }
        c->sched_stale = 1;
    } else if (typ == ACT) {
        c->n_act++;
        c->open_row[b] = row;
        c->hits[b] = 0;
        record_act(c, r, clk);
        if (c->rank_open[r]++ == 0) c->rank_since[r] = clk;  /* an ACT always opens a closed bank */
    } else if (typ == PRE) {
        c->n_pre++;
        c->open_row[b] = -1;
        c->hits[b] = 0;
        if (--c->rank_open[r] == 0) c->rank_active_closed += clk - c->rank_since[r];  /* closing clock: precharged */
    } else {  /* REF: the whole rank */
        c->n_ref++;
        c->refq_head++; c->refq_len--;
        c->in_ref = 0; c->ref_rank = -1;
    }
    if (c->sys->log_cmds) log_command(c->sys, clk, c->index, b, typ);
    update_timing(c, typ, b, r, clk);
    if (typ == ACT) raise_act_bounds(c, r, clk);
    c->bound[b] = 0;
    return typ;
}

/* DRAMSim3 ScheduleTransaction: move one transaction into its bank's command queue. Returns the bank if its bound
   was reset, else -1. */
static int schedule(Channel *c) {
    if (c->write_draining == 0 && (c->wb_len >= c->trans_cap || (c->wb_len > 8 && c->n_cmds == 0)))
        c->write_draining = c->wb_len;
    int draining = c->write_draining > 0;
    if ((draining ? c->wb_eligible : c->rq_eligible) == 0) { c->sched_stale = 0; return -1; }
    TransEntry *queue = draining ? c->wb : c->rq;
    int len = draining ? c->wb_len : c->rq_len, j = 0;
    while (j < len && !c->room[queue[j].bank]) j++;
    if (j == len) { PyErr_SetString(PyExc_RuntimeError, "DRAM core: eligible count out of step"); return -2; }
    TransEntry e = queue[j];
    int b = e.bank;
    if (draining) {
        if (find_pending_read(c, e.addr, b) >= 0) { c->write_draining = 0; return -1; }  /* the read goes first */
        c->write_draining--; c->wb_count[b]--; c->wb_eligible--;
    } else {
        c->rq_count[b]--; c->rq_eligible--;
    }
    CmdEntry *q = c->q + (size_t)b * c->cmd_cap;
    CmdEntry *ne = &q[c->qlen[b]++];
    ne->row = e.row; ne->addr = e.addr; ne->is_write = draining; ne->rec = e.rec;
    if (draining) c->q_writes[b]++;
    if (c->qlen[b] == c->cmd_cap) {
        c->rq_eligible -= c->rq_count[b];
        c->wb_eligible -= c->wb_count[b];
        c->room[b] = 0;
    }
    c->n_cmds++;
    memmove(queue + j, queue + j + 1, (size_t)(len - j - 1) * sizeof(TransEntry));
    if (draining) c->wb_len--; else c->rq_len--;
    if (!can_schedule(c)) c->sched_stale = 0;
    if (c->qlen[b] > 1 && e.row != c->open_row[b]) return -1;  /* a younger row miss is never a candidate */
    c->bound[b] = 0;
    return b;
}

static int refq_push(Channel *c, int r) {
    if (c->refq_head + c->refq_len == c->refq_cap) {
        if (c->refq_head > 0) {
            memmove(c->refq, c->refq + c->refq_head, c->refq_len * sizeof(int));
            c->refq_head = 0;
        } else {
            int cap = 2 * c->refq_cap;
            int *n = PyMem_Realloc(c->refq, cap * sizeof(int));
            if (!n) return -1;
            c->refq = n; c->refq_cap = cap;
        }
    }
    c->refq[c->refq_head + c->refq_len++] = r;
    return 0;
}

static int tick(Channel *c, i64 clk) {
    i64 ri = c->ref_interval;
    if (ri && clk % ri == 0 && clk > 0) {
        if (c->ref_simultaneous) {
            for (int r = 0; r < c->nr; r++) if (refq_push(c, r) < 0) return -1;
        } else {
            if (refq_push(c, c->next_ref_rank) < 0) return -1;
            c->next_ref_rank = (c->next_ref_rank + 1) % c->nr;
        }
    }
    int b = -1, i = -100;
    if (c->refq_len) i = finish_refresh(c, clk, &b);
    if (i == -100) { i = next_command(c, clk, &b); if (i == -2) i = -100; }
    int b1 = -1, b2 = -1;
    if (i != -100) {
        b1 = b;
        int typ = issue(c, b1, i, clk);
        if (c->dual_cmd) {
            int bb;
            int i2 = next_command(c, clk, &bb);
            if (i2 >= 0) {
                b2 = bb;
                i64 row = c->q[(size_t)bb * c->cmd_cap + i2].row, orow = c->open_row[bb];
                if ((orow >= 0 && row == orow) != (typ == RD || typ == WR)) issue(c, bb, i2, clk);
            }
        }
    }
    int bs = -1;
    if (c->sched_stale) { bs = schedule(c); if (bs == -2) return -1; }
    i64 nxt = clk + 1;
    int bb3[3] = {b1, b2, bs};
    for (int k = 0; k < 3; k++) {
        int x = bb3[k];
        if (x >= 0 && c->bound[x] <= clk && scan(c, x, nxt) >= 0) c->bound[x] = nxt;
    }
    i64 nd = INF;
    if (c->in_ref) {
        int lo = c->ref_rank * c->banks, hi = lo + c->banks;
        for (int x = 0; x < c->nb; x++) if ((x < lo || x >= hi) && c->bound[x] < nd) nd = c->bound[x];
    } else {
        for (int x = 0; x < c->nb; x++) if (c->bound[x] < nd) nd = c->bound[x];
    }
    if (nd <= clk || (c->sched_stale && (c->rq_len || c->wb_len))) nd = nxt;
    if (c->refq_len) {
        i64 rb = refresh_bound(c);
        rb = rb > nxt ? rb : nxt;
        if (rb < nd) nd = rb;
    }
    if (ri) {
        i64 nr = (clk / ri + 1) * ri;
        if (nr < nd) nd = nr;
    }
    c->next_due = nd;
    return 0;
}

/* --- the system (system.py) --------------------------------------------------------------------------------------- */
static int refill(System *s);

static void admit(System *s, i64 c) {
    if (c != s->adm_cycle) { s->adm_cycle = c; s->adm_count = 0; }
    i64 count = s->adm_count;
    /* a batch's next bursts join the inbox as it empties, so it is never left empty while some remain */
    while ((s->in_len || refill(s)) && count < s->width) {
        InboxEntry *e = &s->inbox[s->in_head];
        Channel *ch = &s->chans[e->ch];
        if ((e->is_write ? ch->wb_len : ch->rq_len) >= ch->trans_cap) break;  /* the head waits, blocking the rest */
        InboxEntry x = *e;
        s->in_head++; s->in_len--;
        if (s->in_head == s->in_cap) s->in_head = 0;
        add(ch, x.addr, x.bank, x.row, x.is_write, x.tag, c + 1);
        count++;
    }
    s->adm_count = count;
    s->admit_due = (s->in_len && count >= s->width) ? c + 1 : INF;
}

static i64 sys_next_cycle(System *s) {
    i64 nd = INF;
    for (int k = 0; k < s->n_ch; k++) if (s->chans[k].next_due < nd) nd = s->chans[k].next_due;
    return nd < s->admit_due ? nd : s->admit_due;
}

static int sys_busy(System *s);

/* process memory cycle c: the channels due, then the front end */
static int sys_step(System *s, i64 c) {
    for (int k = 0; k < s->n_ch; k++)
        if (s->chans[k].next_due <= c && tick(&s->chans[k], c) < 0) return -1;
    s->clk = c;
    if (s->in_len) {
        InboxEntry *e = &s->inbox[s->in_head];
        Channel *ch = &s->chans[e->ch];
        if ((e->is_write ? ch->wb_len : ch->rq_len) >= ch->trans_cap) s->admit_due = INF;
        else admit(s, c);
    }
    if (s->oom) { PyErr_NoMemory(); return -1; }
    return 0;
}

/* stop_idle: stop after the first processed cycle that leaves the system idle (clk = that cycle) */
static int sys_advance(System *s, i64 to, int stop_idle) {
    unsigned visits = 0;
    for (;;) {
        i64 c = sys_next_cycle(s);
        if (c > to) break;
        if (++visits % 65536 == 0 && PyErr_CheckSignals() < 0) return -1;  /* Ctrl-C in a long (or livelocked) run */
        if (sys_step(s, c) < 0) return -1;
        if (stop_idle && !sys_busy(s)) return 0;
    }
    if (to > s->clk && to < INF) s->clk = to;
    return 0;
}

static int sys_busy(System *s) {
    if (s->in_len) return 1;
    for (int k = 0; k < s->n_ch; k++) if (s->chans[k].n_pending_rd) return 1;
    return 0;
}

/* the inbox entry of one burst-sized transaction (address decode) */
static InboxEntry decode(System *s, i64 addr, int is_write, i64 tag) {
    i64 x = addr >> s->shift;
    InboxEntry e;
    e.addr = addr; e.tag = tag; e.is_write = is_write;
    e.ch = (int)(x / s->fs[0] % s->fc[0]);
    e.bank = (int)(((x / s->fs[1] % s->fc[1]) * s->fc[2] + x / s->fs[2] % s->fc[2]) * s->bpg + x / s->fs[3] % s->fc[3]);
    e.row = x / s->fs[4] % s->fc[4];
    return e;
}

static int push_inbox(System *s, InboxEntry e) {
    if (s->in_len == s->in_cap) {  /* grow the ring buffer, unrolled to start at 0 */
        i64 cap = s->in_cap ? 2 * s->in_cap : 1024;
        InboxEntry *n = PyMem_Malloc(cap * sizeof(InboxEntry));
        if (!n) { s->oom = 1; return -1; }
        for (i64 k = 0; k < s->in_len; k++) n[k] = s->inbox[(s->in_head + k) % s->in_cap];
        PyMem_Free(s->inbox);
        s->inbox = n; s->in_head = 0; s->in_cap = cap;
    }
    s->inbox[(s->in_head + s->in_len) % s->in_cap] = e;
    s->in_len++;
    return 0;
}

/* Move up to REFILL of a batch's not yet generated bursts into the (empty) inbox; returns in_len > 0. Entries join the
   inbox only once it has emptied, so the front end sees them in submission order, exactly as if all had been
   submitted at the start, without holding millions of entries. */
#define REFILL 1024
static int refill(System *s) {
    if (!s->batch) return (int)(s->in_len > 0);
    for (int n = 0; n < REFILL && s->gen_k < s->gen_n; n++) {
        i64 k = s->gen_k;
        if (push_inbox(s, decode(s, s->gen_first[k] + s->gen_i * s->gen_rb, s->gen_write, k)) < 0) break;
        if (++s->gen_i == s->gen_count[k]) { s->gen_k++; s->gen_i = 0; }
    }
    return (int)(s->in_len > 0);
}

static int sys_submit(System *s, i64 addr, int is_write, i64 tag, i64 cycle) {
    if (cycle > s->clk && sys_advance(s, cycle, 0) < 0) return -1;
    InboxEntry e = decode(s, addr, is_write, tag);
    i64 c = cycle > s->clk ? cycle : s->clk;
    int was_waiting = s->in_len && c == s->adm_cycle;
    if (push_inbox(s, e) < 0) { PyErr_NoMemory(); return -1; }
    if (!was_waiting) admit(s, c);  /* else the front end already stopped at this cycle: the newcomer just queues */
    if (s->oom) { PyErr_NoMemory(); return -1; }
    return 0;
}

/* --- Python type ---------------------------------------------------------------------------------------------------- */
static void channel_free(Channel *c) {
    for (int y = 0; y < NTYPES; y++) { PyMem_Free(c->tb[y]); PyMem_Free(c->tg[y]); PyMem_Free(c->tr[y]); }
    void *ptrs[] = {c->open_row, c->bound, c->hits, c->q_writes, c->qlen, c->room, c->rq_count, c->wb_count,
                    c->bank_rank, c->bank_group, c->q, c->rq, c->wb, c->recs, c->rec_free, c->faw, c->faw_len,
                    c->aw, c->aw_len, c->refq, c->rank_open, c->rank_since};
    for (size_t k = 0; k < sizeof(ptrs) / sizeof(ptrs[0]); k++) PyMem_Free(ptrs[k]);
}

static void System_dealloc(System *s) {
    if (s->chans) { for (int k = 0; k < s->n_ch; k++) channel_free(&s->chans[k]); PyMem_Free(s->chans); }
    PyMem_Free(s->inbox); PyMem_Free(s->waiters); PyMem_Free(s->done); PyMem_Free(s->cmd_log);
    PyMem_Free(s->bt_done); PyMem_Free(s->gen_first); PyMem_Free(s->gen_count);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

#define CALLOC(p, n, T) do { (p) = PyMem_Calloc((size_t)(n) > 0 ? (size_t)(n) : 1, sizeof(T)); if (!(p)) goto oom; } while (0)

static int read_raises(PyObject *seq, Raise *out, int *n) {
    /* seq: sequence of (type, latency) pairs */
    PyObject *fast = PySequence_Fast(seq, "raises must be a sequence");
    if (!fast) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    if (len > MAXRAISE) { Py_DECREF(fast); PyErr_SetString(PyExc_ValueError, "too many timing raises"); return -1; }
    for (Py_ssize_t k = 0; k < len; k++) {
        int y, lat;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, k), "ii", &y, &lat)) { Py_DECREF(fast); return -1; }
        out[k].y = y; out[k].lat = lat;
    }
    *n = (int)len;
    Py_DECREF(fast);
    return 0;
}

/* System(geometry, timing, mapping, issue_width, record)
   geometry: (channels, ranks, banks_per_rank, banks_per_group, bankgroups, cmd_cap, trans_cap, hit_limit, dual_cmd,
              ref_interval, ref_simultaneous, read_delay, faw, t32aw)
   timing: 5 tuples (one per issued type) of 4 sequences (bank, group, rank, other ranks) of (type, latency)
   mapping: (shift, ((stride, count) for ch, ra, bg, ba, ro))
   issue_width: 0 = unlimited */
static int System_init(System *s, PyObject *args, PyObject *kw) {
    PyObject *geom, *timing, *mapping;
    long long width;
    int record;
    if (!PyArg_ParseTuple(args, "OOOLp", &geom, &timing, &mapping, &width, &record)) return -1;
    int n_ch, nr, banks, bpg, ngr, cmd_cap, trans_cap, hit_limit, dual, ref_sim;
    long long ri, read_delay, faw_t, t32aw;
    if (!PyArg_ParseTuple(geom, "iiiiiiiiiLiLLL", &n_ch, &nr, &banks, &bpg, &ngr, &cmd_cap, &trans_cap, &hit_limit,
                          &dual, &ri, &ref_sim, &read_delay, &faw_t, &t32aw))
        return -1;
    if (n_ch <= 0 || nr <= 0 || banks <= 0 || bpg <= 0 || cmd_cap <= 0 || trans_cap <= 0) {
        PyErr_SetString(PyExc_ValueError, "DRAM core: sizes must be positive");
        return -1;
    }
    if (s->chans) { PyErr_SetString(PyExc_RuntimeError, "DRAM core: already initialised"); return -1; }
    for (int typ = 0; typ < NTYPES; typ++) {
        PyObject *t = PySequence_GetItem(timing, typ);
        if (!t) return -1;
        PyObject *parts[4];
        int ok = 1;
        for (int k = 0; k < 4; k++) { parts[k] = PySequence_GetItem(t, k); if (!parts[k]) ok = 0; }
        Py_DECREF(t);
        if (ok) ok = read_raises(parts[0], s->T.bank[typ], &s->T.n_bank[typ]) == 0
                  && read_raises(parts[1], s->T.group[typ], &s->T.n_group[typ]) == 0
                  && read_raises(parts[2], s->T.rank[typ], &s->T.n_rank[typ]) == 0
                  && read_raises(parts[3], s->T.other[typ], &s->T.n_other[typ]) == 0;
        for (int k = 0; k < 4; k++) Py_XDECREF(parts[k]);
        if (!ok) return -1;
    }
    PyObject *fields;
    if (!PyArg_ParseTuple(mapping, "iO", &s->shift, &fields)) return -1;
    for (int k = 0; k < 5; k++) {
        PyObject *f = PySequence_GetItem(fields, k);
        if (!f) return -1;
        long long st, ct;
        int ok = PyArg_ParseTuple(f, "LL", &st, &ct);
        Py_DECREF(f);
        if (!ok) return -1;
        s->fs[k] = st; s->fc[k] = ct;
    }
    s->bpg = bpg;
    s->n_ch = n_ch;
    s->width = width > 0 ? width : INF;
    s->clk = -1; s->admit_due = INF; s->adm_cycle = -1; s->adm_count = 0;
    s->waiter_free = -1;
    s->record = record;
    CALLOC(s->chans, n_ch, Channel);
    int nb = nr * banks, ng = nr * ngr, n_rec = trans_cap + nb * cmd_cap + 1;
    for (int k = 0; k < n_ch; k++) {
        Channel *c = &s->chans[k];
        c->sys = s; c->T = &s->T; c->index = k;
        c->nb = nb; c->ng = ng; c->nr = nr; c->banks = banks; c->bpg = bpg;
        c->cmd_cap = cmd_cap; c->trans_cap = trans_cap; c->hit_limit = hit_limit; c->dual_cmd = dual;
        c->read_delay = read_delay; c->faw_t = faw_t; c->t32aw = t32aw;
        for (int y = 0; y < NTYPES; y++) { CALLOC(c->tb[y], nb, i64); CALLOC(c->tg[y], ng, i64); CALLOC(c->tr[y], nr, i64); }
        CALLOC(c->open_row, nb, i64); CALLOC(c->bound, nb, i64);
        CALLOC(c->hits, nb, int); CALLOC(c->q_writes, nb, int); CALLOC(c->qlen, nb, int); CALLOC(c->room, nb, int);
        CALLOC(c->rq_count, nb, int); CALLOC(c->wb_count, nb, int);
        CALLOC(c->bank_rank, nb, int); CALLOC(c->bank_group, nb, int);
        for (int b = 0; b < nb; b++) {
            c->open_row[b] = -1; c->bound[b] = INF; c->room[b] = 1;
            c->bank_rank[b] = b / banks; c->bank_group[b] = b / bpg;
        }
        CALLOC(c->q, (size_t)nb * cmd_cap, CmdEntry);
        CALLOC(c->rq, trans_cap, TransEntry); CALLOC(c->wb, trans_cap, TransEntry);
        CALLOC(c->recs, n_rec, ReadRec); CALLOC(c->rec_free, n_rec, int);
        for (int r = 0; r < n_rec; r++) c->rec_free[r] = n_rec - 1 - r;
        c->n_rec_free = n_rec;
        CALLOC(c->faw, nr * 4, i64); CALLOC(c->faw_len, nr, int); CALLOC(c->aw, nr * 32, i64); CALLOC(c->aw_len, nr, int);
        c->ref_interval = ri; c->ref_simultaneous = ref_sim; c->ref_rank = -1;
        c->refq_cap = 4 * nr + 4; CALLOC(c->refq, c->refq_cap, int);
        CALLOC(c->rank_open, nr, int); CALLOC(c->rank_since, nr, i64);
        c->next_due = ri ? ri : INF;
        c->queue_idx = 0;
    }
    return 0;
oom:
    PyErr_NoMemory();
    return -1;
}

static PyObject *System_submit(System *s, PyObject *args) {
    long long addr, tag, cycle;
    int is_write;
    if (!PyArg_ParseTuple(args, "LpLL", &addr, &is_write, &tag, &cycle)) return NULL;
    if (sys_submit(s, addr, is_write, tag, cycle) < 0) return NULL;
    return PyLong_FromSsize_t(s->n_done);  /* completions waiting for take_done() */
}

/* submit_many(addrs, writes, tags, cycle): sys_submit for each; the three are equally long sequences of ints. */
static PyObject *System_submit_many(System *s, PyObject *args) {
    PyObject *a, *w, *t;
    long long cycle;
    if (!PyArg_ParseTuple(args, "OOOL", &a, &w, &t, &cycle)) return NULL;
    PyObject *fa = PySequence_Fast(a, "addrs must be a sequence"), *fw = NULL, *ft = NULL, *res = NULL;
    if (!fa) return NULL;
    fw = PySequence_Fast(w, "writes must be a sequence");
    if (!fw) goto out;
    ft = PySequence_Fast(t, "tags must be a sequence");
    if (!ft) goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fa);
    if (PySequence_Fast_GET_SIZE(fw) != n || PySequence_Fast_GET_SIZE(ft) != n) {
        PyErr_SetString(PyExc_ValueError, "addrs, writes and tags must have the same length");
        goto out;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        long long addr = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fa, k));
        int wr = PyObject_IsTrue(PySequence_Fast_GET_ITEM(fw, k));
        long long tag = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(ft, k));
        if (PyErr_Occurred() || wr < 0) goto out;
        if (sys_submit(s, addr, wr, tag, cycle) < 0) goto out;
    }
    res = PyLong_FromSsize_t(s->n_done);
out:
    Py_XDECREF(fa); Py_XDECREF(fw); Py_XDECREF(ft);
    return res;
}

/* after an error inside a batch (Ctrl-C, a batch that cannot complete) the system is left mid-batch: discard it */
static void batch_end(System *s) {
    s->batch = 0;
    PyMem_Free(s->bt_done); PyMem_Free(s->gen_first); PyMem_Free(s->gen_count);
    s->bt_done = s->gen_first = s->gen_count = NULL;
    s->gen_n = s->gen_k = s->gen_i = 0; s->bt_outstanding = 0;
}

/* run_batch(firsts, counts, burst_bytes, is_write, cycle) -> [completion cycle of each access]
   Access k is counts[k] bursts from address firsts[k], burst_bytes apart, all reads or all writes. The same as
   submitting every burst at `cycle` (submit_many) and advancing until the last completes, but the completions are
   counted here instead of buffered, and the core stops right after the memory cycle of the last completion: the
   command trace is the same. Needs an idle front end (no reads pending, nothing waiting for admission). */
static PyObject *System_run_batch(System *s, PyObject *args) {
    PyObject *a, *n_obj;
    long long rb, cycle;
    int is_write;
    if (!PyArg_ParseTuple(args, "OOLpL", &a, &n_obj, &rb, &is_write, &cycle)) return NULL;
    if (sys_busy(s) || s->batch) {
        PyErr_SetString(PyExc_RuntimeError, "DRAM core: run_batch needs an idle front end (no reads pending)");
        return NULL;
    }
    PyObject *fa = PySequence_Fast(a, "firsts must be a sequence"), *fn = NULL, *res = NULL;
    if (!fa) return NULL;
    fn = PySequence_Fast(n_obj, "counts must be a sequence");
    if (!fn) goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fa);
    if (PySequence_Fast_GET_SIZE(fn) != n || rb <= 0) {
        PyErr_SetString(PyExc_ValueError, "firsts and counts must have the same length, burst_bytes > 0");
        goto out;
    }
    s->gen_first = PyMem_Calloc(n ? n : 1, sizeof(i64)); s->gen_count = PyMem_Calloc(n ? n : 1, sizeof(i64));
    s->bt_done = PyMem_Calloc(n ? n : 1, sizeof(i64));
    if (!s->gen_first || !s->gen_count || !s->bt_done) { PyErr_NoMemory(); batch_end(s); goto out; }
    i64 total = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        s->gen_first[k] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fa, k));
        s->gen_count[k] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fn, k));
        if (PyErr_Occurred()) { batch_end(s); goto out; }
        if (s->gen_first[k] < 0 || s->gen_count[k] <= 0) {
            PyErr_SetString(PyExc_ValueError, "run_batch: addresses must be >= 0 and counts > 0");
            batch_end(s); goto out;
        }
        total += s->gen_count[k];
    }
    if (cycle > s->clk && sys_advance(s, cycle, 0) < 0) { batch_end(s); goto out; }
    s->gen_n = n; s->gen_k = 0; s->gen_i = 0; s->gen_rb = rb; s->gen_write = is_write;
    s->bt_outstanding = total;
    s->batch = 1;
    admit(s, cycle > s->clk ? cycle : s->clk);  /* as the first submit does (the inbox was empty) */
    if (s->oom) { PyErr_NoMemory(); batch_end(s); goto out; }
    unsigned visits = 0;
    while (s->bt_outstanding > 0) {
        i64 c = sys_next_cycle(s);
        if (c >= INF) { PyErr_SetString(PyExc_RuntimeError, "DRAM core: a batch cannot complete"); batch_end(s); goto out; }
        if (++visits % 65536 == 0 && PyErr_CheckSignals() < 0) { batch_end(s); goto out; }
        if (sys_step(s, c) < 0) { batch_end(s); goto out; }
    }
    res = PyList_New(n);
    if (res) for (Py_ssize_t k = 0; k < n; k++) PyList_SET_ITEM(res, k, PyLong_FromLongLong(s->bt_done[k]));
    batch_end(s);
out:
    Py_XDECREF(fa); Py_XDECREF(fn);
    return res;
}

static PyObject *System_advance(System *s, PyObject *arg) {
    long long to = PyLong_AsLongLong(arg);
    if (to == -1 && PyErr_Occurred()) return NULL;
    if (sys_advance(s, to, 0) < 0) return NULL;
    return PyLong_FromSsize_t(s->n_done);
}

/* run_until_idle(limit_cycle, stop_at_idle=False) */
static PyObject *System_run_until_idle(System *s, PyObject *args) {
    long long limit;
    int stop_idle = 0;
    if (!PyArg_ParseTuple(args, "L|p", &limit, &stop_idle)) return NULL;
    while (sys_busy(s)) {
        i64 c = sys_next_cycle(s);
        if (c > limit) break;
        i64 to = c + 1024 < limit ? c + 1024 : limit;
        if (sys_advance(s, to, stop_idle) < 0 || PyErr_CheckSignals() < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *System_next_cycle(System *s, PyObject *unused) { return PyLong_FromLongLong(sys_next_cycle(s)); }
static PyObject *System_busy(System *s, PyObject *unused) { return PyBool_FromLong(sys_busy(s)); }
static PyObject *System_get_clk(System *s, void *unused) { return PyLong_FromLongLong(s->clk); }

/* take_done(): the completions since the last call, as a list of (tag, added, done, is_write), oldest first */
static PyObject *System_take_done(System *s, PyObject *unused) {
    PyObject *out = PyList_New(s->n_done);
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < s->n_done; k++) {
        Done *d = &s->done[k];
        PyObject *item = Py_BuildValue("(LLLO)", (long long)d->tag, (long long)d->added, (long long)d->done,
                                       d->is_write ? Py_True : Py_False);
        if (!item) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, k, item);
    }
    s->n_done = 0;
    return out;
}

/* channel_stats(): per channel (read_cmds, write_cmds, act, pre, ref, row_hits, reads_done, writes_done,
   read_latency_sum, last_busy_cycle, rank_active_cycles over clocks 0..clk) */
static PyObject *System_channel_stats(System *s, PyObject *unused) {
    PyObject *out = PyList_New(s->n_ch);
    if (!out) return NULL;
    for (int k = 0; k < s->n_ch; k++) {
        Channel *c = &s->chans[k];
        i64 active = c->rank_active_closed;
        for (int r = 0; r < c->nr; r++) if (c->rank_open[r]) active += s->clk + 1 - c->rank_since[r];
        PyObject *item = Py_BuildValue("(LLLLLLLLLLL)", (long long)c->n_read_cmds, (long long)c->n_write_cmds,
                                       (long long)c->n_act, (long long)c->n_pre, (long long)c->n_ref,
                                       (long long)c->n_row_hits, (long long)c->n_reads_done,
                                       (long long)c->n_writes_done, (long long)c->read_latency_sum,
                                       (long long)c->last_busy_cycle, (long long)active);
        if (!item) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject *System_log_commands(System *s, PyObject *unused) {
    s->log_cmds = 1;
    s->n_logged = 0;
    Py_RETURN_NONE;
}

/* command_log(): (cycle, channel, bank, type) of every command since log_commands(), in issue order */
static PyObject *System_command_log(System *s, PyObject *unused) {
    Py_ssize_t n = s->n_logged / 4;
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        i64 *e = s->cmd_log + 4 * k;
        PyObject *item = Py_BuildValue("(LLLL)", (long long)e[0], (long long)e[1], (long long)e[2], (long long)e[3]);
        if (!item) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static PyMethodDef System_methods[] = {
    {"log_commands", (PyCFunction)System_log_commands, METH_NOARGS, "record every command from now on"},
    {"command_log", (PyCFunction)System_command_log, METH_NOARGS, "(cycle, channel, bank, type) per command"},
    {"submit", (PyCFunction)System_submit, METH_VARARGS,
     "submit(addr, is_write, tag, cycle) -> completions buffered"},
    {"submit_many", (PyCFunction)System_submit_many, METH_VARARGS,
     "submit_many(addrs, writes, tags, cycle) -> completions buffered"},
    {"run_batch", (PyCFunction)System_run_batch, METH_VARARGS,
     "run_batch(firsts, counts, burst_bytes, is_write, cycle) -> completion cycle of each access"},
    {"advance", (PyCFunction)System_advance, METH_O, "advance(to_cycle) -> completions buffered"},
    {"run_until_idle", (PyCFunction)System_run_until_idle, METH_VARARGS,
     "run_until_idle(limit_cycle, stop_at_idle=False)"},
    {"next_cycle", (PyCFunction)System_next_cycle, METH_NOARGS, "next cycle at which anything happens"},
    {"busy", (PyCFunction)System_busy, METH_NOARGS, "reads pending or transactions not yet admitted"},
    {"take_done", (PyCFunction)System_take_done, METH_NOARGS, "completions since the last call"},
    {"channel_stats", (PyCFunction)System_channel_stats, METH_NOARGS, "per-channel counters"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef System_getset[] = {
    {"clk", (getter)System_get_clk, NULL, "last cycle processed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SystemType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hwmodels.dram._dramcore.System",
    .tp_basicsize = sizeof(System),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Compiled DRAM channels and in-order front end (see hwmodels/dram/compiled.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)System_init,
    .tp_dealloc = (destructor)System_dealloc,
    .tp_methods = System_methods,
    .tp_getset = System_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_dramcore", .m_doc = "Compiled core of the DRAM model.", .m_size = -1,
};

PyMODINIT_FUNC PyInit__dramcore(void) {
    if (PyType_Ready(&SystemType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&SystemType);
    if (PyModule_AddObject(m, "System", (PyObject *)&SystemType) < 0) {
        Py_DECREF(&SystemType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

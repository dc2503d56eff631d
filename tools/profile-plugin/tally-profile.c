/*
 * tally-profile: a QEMU TCG plugin counting the guest instructions executed at each virtual
 * PC, under each call stack, inside a window of a Tally run (one vCPU). `tally profile` builds
 * it with `cc -shared -fPIC` (tools/profile-plugin/build.sh does the same by hand) and reads
 * what it writes; docs/profiling.md explains the method and the output.
 *
 * Arguments (`-plugin tally-profile.so,out=FILE,start=SPEC,...`):
 *   out=FILE          where the counts go (default: stdout) when QEMU exits or the last window
 *                     closes
 *   start=SPEC, stop=SPEC           the window [start, stop): the instruction that triggers
 *                     start is counted, the one that triggers stop is not; without start the
 *                     window opens at the first instruction, without stop it ends with QEMU
 *   base_start=SPEC, base_stop=SPEC a second window (the baseline a figure is the difference
 *                     from, e.g. the bench's pass over present pages), counted apart
 *   vbar=ADDR         the kernel's exception vector table (exception entries, faults)
 *   kernel_min=ADDR   the lowest kernel (EL1) virtual address (default 0x8000000000000000)
 *   SPEC = pmu:N      the N-th execution of an `mrs Xt, pmccntr_el0` below kernel_min (the
 *                     bench programs' instructions() reads, counted from boot)
 *        | kpmu:N     the N-th such read, kernel reads included
 *        | 0xADDR[/0xOPCODE][:N]    the N-th execution of the instruction at ADDR (and with
 *                     that encoding, since every user program is linked at the same address)
 *
 * Counting. A callback on every translated instruction counts one execution. QEMU calls it
 * before the instruction runs, so an instruction that does not retire is seen twice: one that
 * faults (the next instruction executed is a synchronous exception vector entry and it was not
 * svc/hvc/smc/brk/hlt) and one that QEMU re-executes after recompiling its block for an I/O
 * access under -icount (the same instruction runs twice in a row and is not a branch to
 * itself). Both are taken back, so the counts are the instructions retired, which is what
 * PMCCNTR_EL0 counts under -icount shift=0: a window between two counter reads totals exactly
 * the difference of the values they read.
 *
 * Call stacks. A shadow stack of frames, each a node of a call tree (parent, site, kind): `bl`
 * and `blr` push a call frame whose site is the branch's address and whose return address is
 * the next one; `ret` pops back to the innermost frame expecting the address it returned to
 * (none expecting it: the stack stays as it is); an exception entry (the next instruction is a
 * vector entry) pushes an exception frame whose site is the interrupted instruction; `eret`
 * pops back to the frame expecting its target. An `eret` that no frame expects is a switch to
 * another domain: the interrupted EL0 stack is set aside under its resume address and the one
 * set aside under the target, if any, comes back (else the stack starts empty). Tail calls
 * (`b`) push nothing: the callee's instructions count under its caller's frame, and the host
 * names the innermost function from the PC itself. Counts are kept per (window, node, PC).
 *
 * Output, one record a line:
 *   tally-profile 1
 *   W window opened closed instructions el0 el1          (one per window: 0 main, 1 baseline)
 *   S seq retaken_faults retaken_reexec unmatched_rets switches depth_overflows
 *   P k ordinal        the k-th EL0 counter read ran after `ordinal` retired instructions
 *   I pc opcode        every instruction counted or at a node's site
 *   N id parent site kind   call-tree nodes (kind c = call, e = exception); node 0 is the root
 *   C window node pc count
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define WINDOWS 2
#define MAX_DEPTH 256
#define MAX_SAVED 64
#define MAX_PMU 65536
#define BUCKETS (1u << 20)

enum kind { K_OTHER, K_CALL, K_RET, K_ERET, K_PMU, K_EXCGEN, K_SELF };
enum mtype { M_NONE, M_PMU, M_KPMU, M_ADDR };

struct marker {
    enum mtype type;
    uint64_t addr, n, hits;
    uint32_t opcode;
    bool has_opcode;
};

struct node {
    uint32_t id;
    uint64_t site;
    struct node *parent, *next;
    char kind;
};

struct entry; /* counts of one (node, insn) */

struct insn {
    uint64_t pc;
    uint32_t opcode;
    uint8_t kind;
    uint8_t marks; /* bit 2w: start marker of window w, bit 2w+1: its stop marker */
    bool used;
    struct node *cached_node;
    struct entry *cached;
    struct insn *next;
};

struct entry {
    struct node *node;
    struct insn *insn;
    uint64_t count[WINDOWS];
    struct entry *next;
};

struct frame {
    struct node *node;
    uint64_t ret;
};

struct saved {
    uint64_t key;
    int depth;
    struct frame frames[MAX_DEPTH];
};

static struct marker start_m[WINDOWS], stop_m[WINDOWS];
static bool has_window[WINDOWS], active[WINDOWS], opened[WINDOWS], closed[WINDOWS];
static uint64_t total[WINDOWS], total_el0[WINDOWS];
static char *out_path;
static uint64_t kernel_min = 0x8000000000000000ull, vbar = ~0ull;
static bool done, dumped;

static struct insn *insns;
static struct node root = {0, 0, NULL, NULL, 'r'};
static struct node **node_hash;
static struct entry **entry_hash;
static uint32_t node_count = 1;
static struct node **node_list; /* by id, grown as needed */
static uint32_t node_cap;

static struct frame stack[MAX_DEPTH];
static int depth;
static struct saved saved[MAX_SAVED];
static int saved_used;

static struct insn *last;
static struct entry *last_entry;
static bool last_counted[WINDOWS];
static uint64_t seq, retaken_faults, retaken_reexec, unmatched_rets, switches, overflows;
static uint64_t pmu_ordinal[MAX_PMU];
static uint64_t pmu_reads;

static size_t hash2(uint64_t a, uint64_t b)
{
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull + (a << 6));
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (size_t)(h >> 40) & (BUCKETS - 1);
}

static struct node *child(struct node *parent, uint64_t site, char kind)
{
    size_t h = hash2(parent->id * 2u + (kind == 'e'), site);
    for (struct node *n = node_hash[h]; n; n = n->next)
        if (n->parent == parent && n->site == site && n->kind == kind)
            return n;
    struct node *n = calloc(1, sizeof *n);
    n->id = node_count++;
    n->site = site;
    n->parent = parent;
    n->kind = kind;
    n->next = node_hash[h];
    node_hash[h] = n;
    if (n->id >= node_cap) {
        node_cap = node_cap ? node_cap * 2 : 4096;
        node_list = realloc(node_list, node_cap * sizeof *node_list);
    }
    node_list[n->id] = n;
    return n;
}

static struct node *current(void)
{
    return depth ? stack[depth - 1].node : &root;
}

static void push(uint64_t site, char kind, uint64_t ret)
{
    if (depth == MAX_DEPTH) {
        overflows++;
        return;
    }
    stack[depth].node = child(current(), site, kind);
    stack[depth].ret = ret;
    depth++;
}

/* Pops back to the innermost frame expecting `pc`; false when none does. */
static bool pop_to(uint64_t pc)
{
    for (int i = depth - 1; i >= 0; i--)
        if (stack[i].ret == pc) {
            depth = i;
            return true;
        }
    return false;
}

/* An eret nobody expects: another domain resumes. The EL0 stack up to its exception frame is
 * set aside under that frame's resume address; the stack set aside under `pc` comes back. */
static void switch_to(uint64_t pc)
{
    switches++;
    int base = -1;
    for (int i = 0; i < depth; i++)
        if (stack[i].node->kind == 'e' && stack[i].node->site < kernel_min) {
            base = i;
            break;
        }
    if (base >= 0) {
        struct saved *slot = NULL;
        for (int i = 0; i < saved_used; i++)
            if (saved[i].key == stack[base].ret)
                slot = &saved[i];
        if (!slot && saved_used < MAX_SAVED)
            slot = &saved[saved_used++];
        if (slot) {
            slot->key = stack[base].ret;
            slot->depth = base;
            memcpy(slot->frames, stack, base * sizeof *stack);
        }
    }
    depth = 0;
    for (int i = 0; i < saved_used; i++)
        if (saved[i].key == pc) {
            depth = saved[i].depth;
            memcpy(stack, saved[i].frames, depth * sizeof *stack);
            saved[i] = saved[--saved_used];
            break;
        }
}

static struct entry *entry_for(struct node *node, struct insn *insn)
{
    if (insn->cached_node == node && insn->cached)
        return insn->cached;
    size_t h = hash2(node->id, insn->pc ^ ((uint64_t)insn->opcode << 1));
    struct entry *e;
    for (e = entry_hash[h]; e; e = e->next)
        if (e->node == node && e->insn == insn)
            break;
    if (!e) {
        e = calloc(1, sizeof *e);
        e->node = node;
        e->insn = insn;
        e->next = entry_hash[h];
        entry_hash[h] = e;
    }
    insn->cached_node = node;
    insn->cached = e;
    return e;
}

static void dump(void)
{
    if (dumped)
        return;
    dumped = true;
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        qemu_plugin_outs("tally-profile: cannot open the output file\n");
        return;
    }
    fprintf(out, "tally-profile 1\n");
    for (int w = 0; w < WINDOWS; w++)
        if (has_window[w])
            fprintf(out, "W %d %d %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", w, opened[w],
                    closed[w], total[w], total_el0[w], total[w] - total_el0[w]);
    fprintf(out, "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
            seq, retaken_faults, retaken_reexec, unmatched_rets, switches, overflows);
    for (uint64_t k = 0; k < pmu_reads && k < MAX_PMU; k++)
        fprintf(out, "P %" PRIu64 " %" PRIu64 "\n", k + 1, pmu_ordinal[k]);
    for (struct insn *i = insns; i; i = i->next)
        if (i->used)
            fprintf(out, "I %" PRIx64 " %08" PRIx32 "\n", i->pc, i->opcode);
    for (uint32_t id = 1; id < node_count; id++) {
        struct node *n = node_list[id];
        fprintf(out, "N %" PRIu32 " %" PRIu32 " %" PRIx64 " %c\n", n->id, n->parent->id, n->site,
                n->kind);
    }
    for (size_t h = 0; h < BUCKETS; h++)
        for (struct entry *e = entry_hash[h]; e; e = e->next)
            for (int w = 0; w < WINDOWS; w++)
                if (e->count[w])
                    fprintf(out, "C %d %" PRIu32 " %" PRIx64 " %" PRIu64 "\n", w, e->node->id,
                            e->insn->pc, e->count[w]);
    if (out != stdout)
        fclose(out);
}

/* The last instruction did not retire: take its count back. */
static void retake(void)
{
    seq--;
    for (int w = 0; w < WINDOWS; w++)
        if (last_counted[w]) {
            last_entry->count[w]--;
            total[w]--;
            if (last->pc < kernel_min)
                total_el0[w]--;
            last_counted[w] = false;
        }
}

static bool triggers(struct marker *m, struct insn *r)
{
    if (m->type == M_NONE)
        return false;
    if (m->type == M_PMU && (r->kind != K_PMU || r->pc >= kernel_min))
        return false;
    if (m->type == M_KPMU && r->kind != K_PMU)
        return false;
    if (m->type == M_ADDR &&
        (r->pc != m->addr || (m->has_opcode && r->opcode != m->opcode)))
        return false;
    return ++m->hits == m->n;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    struct insn *r = udata;
    uint64_t pc = r->pc;
    (void)vcpu;
    if (done)
        return;

    /* Bookkeeping for the instruction before this one. */
    bool vector = pc >= vbar && pc < vbar + 0x800 && (pc - vbar) % 0x80 == 0;
    if (last && r == last && r->kind != K_SELF) {
        retaken_reexec++;
        retake();
    } else if (vector) {
        bool sync = ((pc - vbar) & 0x180) == 0;
        uint64_t resume = 0, site = 0;
        if (last) {
            site = last->pc;
            last->used = true;
            if (sync && last->kind != K_EXCGEN) {
                retaken_faults++;
                retake();
                resume = last->pc;
            } else {
                resume = last->pc + 4;
            }
        }
        push(site, 'e', resume);
    } else if (last) {
        switch (last->kind) {
        case K_CALL:
            last->used = true;
            push(last->pc, 'c', last->pc + 4);
            break;
        case K_RET:
            if (!pop_to(pc))
                unmatched_rets++;
            break;
        case K_ERET:
            if (!pop_to(pc))
                switch_to(pc);
            break;
        }
    }

    /* Window markers. */
    if (r->marks) {
        for (int w = 0; w < WINDOWS; w++) {
            if ((r->marks & (1u << (2 * w))) && !opened[w] && triggers(&start_m[w], r))
                active[w] = opened[w] = true;
            if ((r->marks & (2u << (2 * w))) && triggers(&stop_m[w], r) && active[w]) {
                active[w] = false;
                closed[w] = true;
            }
        }
    }
    if (r->kind == K_PMU && pc < kernel_min) {
        if (pmu_reads < MAX_PMU)
            pmu_ordinal[pmu_reads] = seq;
        pmu_reads++;
    }

    /* Count. */
    seq++;
    struct entry *e = NULL;
    for (int w = 0; w < WINDOWS; w++) {
        last_counted[w] = active[w];
        if (!active[w])
            continue;
        if (!e)
            e = entry_for(current(), r);
        e->count[w]++;
        total[w]++;
        if (pc < kernel_min)
            total_el0[w]++;
        r->used = true;
    }
    last_entry = e;
    last = r;

    bool open = false;
    for (int w = 0; w < WINDOWS; w++)
        open |= has_window[w] && !closed[w];
    if (!open) {
        done = true;
        dump();
    }
}

static uint8_t classify(uint32_t op)
{
    if ((op & 0xfc000000u) == 0x94000000u || (op & 0xfffffc1fu) == 0xd63f0000u)
        return K_CALL; /* bl, blr */
    if ((op & 0xfffffc1fu) == 0xd65f0000u)
        return K_RET; /* ret Xn */
    if (op == 0xd69f03e0u)
        return K_ERET;
    if ((op & 0xffffffe0u) == 0xd53b9d00u)
        return K_PMU; /* mrs Xt, pmccntr_el0 */
    if ((op & 0xff000000u) == 0xd4000000u)
        return K_EXCGEN; /* svc, hvc, smc, brk, hlt */
    if (op == 0x14000000u)
        return K_SELF; /* b . */
    return K_OTHER;
}

static bool marks(struct marker *m, struct insn *r)
{
    switch (m->type) {
    case M_PMU:
    case M_KPMU:
        return r->kind == K_PMU;
    case M_ADDR:
        return r->pc == m->addr && (!m->has_opcode || r->opcode == m->opcode);
    default:
        return false;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        struct insn *r = calloc(1, sizeof *r);
        r->pc = qemu_plugin_insn_vaddr(insn);
        if (qemu_plugin_insn_size(insn) == 4)
            memcpy(&r->opcode, qemu_plugin_insn_data(insn), 4);
        r->kind = classify(r->opcode);
        for (int w = 0; w < WINDOWS; w++)
            r->marks |= (marks(&start_m[w], r) ? 1u : 0u) << (2 * w) |
                        (marks(&stop_m[w], r) ? 2u : 0u) << (2 * w);
        r->next = insns;
        insns = r;
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_exec, QEMU_PLUGIN_CB_NO_REGS, r);
    }
}

static bool parse_marker(const char *spec, struct marker *m)
{
    char *end;
    memset(m, 0, sizeof *m);
    m->n = 1;
    if (!strncmp(spec, "pmu:", 4) || !strncmp(spec, "kpmu:", 5)) {
        m->type = spec[0] == 'k' ? M_KPMU : M_PMU;
        m->n = strtoull(strchr(spec, ':') + 1, &end, 10);
        return *end == 0 && m->n > 0;
    }
    if (strncmp(spec, "0x", 2))
        return false;
    m->type = M_ADDR;
    m->addr = strtoull(spec, &end, 16);
    if (*end == '/') {
        m->has_opcode = true;
        m->opcode = (uint32_t)strtoul(end + 1, &end, 16);
    }
    if (*end == ':')
        m->n = strtoull(end + 1, &end, 10);
    return *end == 0 && m->n > 0;
}

static void on_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    dump();
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    has_window[0] = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *value = strchr(a, '=');
        struct marker *m = NULL;
        if (!value) {
            qemu_plugin_outs("tally-profile: arguments are KEY=VALUE\n");
            return -1;
        }
        value++;
        if (!strncmp(a, "out=", 4))
            out_path = strdup(value);
        else if (!strncmp(a, "vbar=", 5))
            vbar = strtoull(value, NULL, 0);
        else if (!strncmp(a, "kernel_min=", 11))
            kernel_min = strtoull(value, NULL, 0);
        else if (!strncmp(a, "start=", 6))
            m = &start_m[0];
        else if (!strncmp(a, "stop=", 5))
            m = &stop_m[0];
        else if (!strncmp(a, "base_start=", 11))
            m = &start_m[1], has_window[1] = true;
        else if (!strncmp(a, "base_stop=", 10))
            m = &stop_m[1], has_window[1] = true;
        else {
            qemu_plugin_outs("tally-profile: unknown argument (out, start, stop, base_start, "
                             "base_stop, vbar, kernel_min)\n");
            return -1;
        }
        if (m && !parse_marker(value, m)) {
            qemu_plugin_outs("tally-profile: a window marker is pmu:N, kpmu:N or "
                             "0xADDR[/0xOPCODE][:N]\n");
            return -1;
        }
    }
    for (int w = 0; w < WINDOWS; w++)
        active[w] = opened[w] = has_window[w] && start_m[w].type == M_NONE;
    node_hash = calloc(BUCKETS, sizeof *node_hash);
    entry_hash = calloc(BUCKETS, sizeof *entry_hash);
    if (!node_hash || !entry_hash)
        return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}

/* registry.c - task functions registered by name, and how a worker finds
 * them again in its own address space.
 *
 * Design: a task crosses to a worker as (module, offset): the name that
 * dl_iterate_phdr gives the loaded object holding the function ("" for the
 * main program) and the function's distance from that object's base.  The
 * forkserver is the same program executed anew, with the same shared
 * libraries, but at other addresses (ASLR), so a raw pointer would be
 * wrong there and (module, offset) is right.  The worker never needs the
 * names: no constructor or main has to run in it to rebuild a table.
 *   (Rejected: registering in the worker by running the program's
 *   constructors.  It would tie the pool to how and when the program
 *   registers, and main never runs in a worker.)
 *
 * The table only grows: an entry is filled, then published by a release
 * store of the count, so lookups take no lock.  Registration is serialised
 * by reg_lock.  Invariants: entries [0, count) are complete and constant;
 * names are unique.
 */
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "process/process.h"
#include "weft/sync.h"

#define REG_MAX 256

static weft__proc_entry table[REG_MAX]; /* [0, count) constant */
static _Atomic size_t count;            /* atomic; written under reg_lock */
static weft_lock reg_lock = WEFT_LOCK_INIT;

typedef struct find_module {
    uintptr_t addr;   /* in */
    const char *name; /* out: the module holding addr */
    uintptr_t base;
    bool found;
} find_module;

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    find_module *fm = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && fm->addr >= lo &&
            fm->addr < lo + ph->p_memsz) {
            fm->name = info->dlpi_name ? info->dlpi_name : "";
            fm->base = info->dlpi_addr;
            fm->found = true;
            return 1;
        }
    }
    return 0;
}

const weft__proc_entry *weft__process_lookup(const char *name)
{
    size_t n = atomic_load_explicit(&count, memory_order_acquire);
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

int weft_process_register(const char *name, weft_process_fn fn)
{
    find_module fm = {(uintptr_t)fn, NULL, 0, false};
    const weft__proc_entry *old;
    weft__proc_entry *e;
    size_t n;
    int rc = 0;

    if (name == NULL || fn == NULL || name[0] == '\0' ||
        strlen(name) >= WEFT__PROC_NAME_MAX)
        return -EINVAL;
    dl_iterate_phdr(find_cb, &fm);
    if (!fm.found || strlen(fm.name) >= WEFT__PROC_MODULE_MAX)
        return -EINVAL;
    weft_lock_acquire(&reg_lock, WEFT_FOREVER);
    old = weft__process_lookup(name);
    n = atomic_load_explicit(&count, memory_order_relaxed);
    if (old != NULL) {
        rc = old->fn == fn ? 0 : -EBUSY;
    } else if (n == REG_MAX) {
        rc = -ENOMEM;
    } else {
        e = &table[n];
        strcpy(e->name, name);
        strcpy(e->module, fm.name);
        e->offset = (uint64_t)(fm.addr - fm.base);
        e->fn = fn;
        atomic_store_explicit(&count, n + 1, memory_order_release);
    }
    weft_lock_release(&reg_lock);
    return rc;
}

/* ---- the worker's side ---------------------------------------------------
 * A worker runs one thread, so its little cache of module bases needs no
 * lock; it saves a walk over the loaded objects for every task. */

typedef struct base_of {
    const char *name; /* in */
    uintptr_t base;   /* out */
    bool found;
} base_of;

static int base_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    base_of *b = arg;
    const char *n = info->dlpi_name ? info->dlpi_name : "";
    if (strcmp(n, b->name) != 0)
        return 0;
    b->base = info->dlpi_addr;
    b->found = true;
    return 1;
}

#define CACHE_N 8
static struct {
    char name[WEFT__PROC_MODULE_MAX];
    uintptr_t base;
} cache[CACHE_N];
static int cache_n;

weft_process_fn weft__process_resolve(const char *module, uint64_t offset)
{
    base_of b = {module, 0, false};
    weft_process_fn fn;

    if (strlen(module) >= WEFT__PROC_MODULE_MAX)
        return NULL;
    for (int i = 0; i < cache_n; i++) {
        if (strcmp(cache[i].name, module) == 0) {
            b.base = cache[i].base;
            b.found = true;
            break;
        }
    }
    if (!b.found) {
        dl_iterate_phdr(base_cb, &b);
        if (!b.found)
            return NULL;
        if (cache_n < CACHE_N) {
            strcpy(cache[cache_n].name, module);
            cache[cache_n++].base = b.base;
        }
    }
    /* A function pointer from an address: POSIX guarantees this works
     * (dlsym depends on it). */
    uintptr_t addr = b.base + (uintptr_t)offset;
    memcpy(&fn, &addr, sizeof fn);
    return fn;
}

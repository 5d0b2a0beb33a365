/* SPDX-License-Identifier: MIT */
/*
 * Code addresses to function names, for function-call records. The hot
 * path records addresses only; the names come from here, once per address:
 * find the loaded object holding the address (dl_iterate_phdr gives its
 * load bias, so PIEs and shared libraries resolve alike), read its symbol
 * table with libelf (.symtab, which has static functions, else .dynsym),
 * and demangle C++ names when the program has libstdc++'s demangler.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "symbols.h"

struct sym {
        uint64_t start, size;
        const char *name;
};

struct object {
        uint64_t bias, lo, hi;        /* load bias and the address range of its segments */
        struct sym *syms;
        size_t n;
};

#define MAX_OBJECTS 512
#define CACHE_SLOTS 65536

static pthread_mutex_t symbols_lock = PTHREAD_MUTEX_INITIALIZER;
static struct object objects[MAX_OBJECTS];
static size_t n_objects;
static struct {
        uint64_t address;
        const char *name;
} cache[CACHE_SLOTS];

static int by_start(const void *a, const void *b)
{
        const struct sym *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* Reads the function symbols of @path; the names are kept for good. */
static void load_symbols(struct object *o, const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        elf_version(EV_CURRENT);
        Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
        Elf_Scn *scn = NULL, *chosen = NULL;
        GElf_Shdr shdr, chosen_hdr = { 0 };
        while (elf && (scn = elf_nextscn(elf, scn))) {
                if (!gelf_getshdr(scn, &shdr))
                        continue;
                if (shdr.sh_type == SHT_SYMTAB || (shdr.sh_type == SHT_DYNSYM && !chosen)) {
                        chosen = scn;
                        chosen_hdr = shdr;
                }
        }
        Elf_Data *data = chosen ? elf_getdata(chosen, NULL) : NULL;
        size_t n = data && chosen_hdr.sh_entsize ? chosen_hdr.sh_size / chosen_hdr.sh_entsize : 0;
        o->syms = n ? calloc(n, sizeof(*o->syms)) : NULL;
        for (size_t i = 0; o->syms && i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value)
                        continue;
                const char *name = elf_strptr(elf, chosen_hdr.sh_link, sym.st_name);
                if (name && *name)
                        o->syms[o->n++] = (struct sym){ sym.st_value, sym.st_size, strdup(name) };
        }
        qsort(o->syms, o->n, sizeof(*o->syms), by_start);
        if (elf)
                elf_end(elf);
        close(fd);
}

struct find {
        uint64_t address;
        struct object *found;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
        struct find *f = data;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD)
                        continue;
                uint64_t start = info->dlpi_addr + ph->p_vaddr;
                lo = start < lo ? start : lo;
                hi = start + ph->p_memsz > hi ? start + ph->p_memsz : hi;
        }
        if (f->address < lo || f->address >= hi)
                return 0;
        for (size_t i = 0; i < n_objects; i++)
                if (objects[i].lo == lo && objects[i].bias == info->dlpi_addr) {
                        f->found = &objects[i];
                        return 1;
                }
        if (n_objects == MAX_OBJECTS)
                return 1;
        struct object *o = &objects[n_objects++];
        *o = (struct object){ .bias = info->dlpi_addr, .lo = lo, .hi = hi };
        /* The main program has an empty name here. */
        load_symbols(o, info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe");
        f->found = o;
        return 1;
}

static const char *demangle(const char *name)
{
        typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);
        static demangle_fn fn;
        static bool looked;
        if (strncmp(name, "_Z", 2) != 0)
                return name;
        if (!looked) {
                fn = (demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
                looked = true;
        }
        int status = -1;
        char *plain = fn ? fn(name, NULL, NULL, &status) : NULL;
        return status == 0 && plain ? plain : name;
}

/* The readable name of symbol @name, cut where a span's name would be: a
 * template's name can run to kilobytes, past what the daemon takes. */
static const char *function_name(const char *name)
{
        const char *plain = demangle(name);
        size_t len = text_len(plain, NAME_MAX_BYTES);
        if (!plain[len])
                return plain;
        if (plain != name) {         /* the demangler's copy is ours */
                ((char *)plain)[len] = '\0';
                return plain;
        }
        char *cut = strndup(name, len);
        return cut ? cut : "?";
}

static const char *resolve(uint64_t address)
{
        struct find f = { .address = address };
        dl_iterate_phdr(find_object, &f);
        if (f.found) {
                uint64_t rel = address - f.found->bias;
                size_t lo = 0, hi = f.found->n;
                while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        if (f.found->syms[mid].start <= rel)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                if (lo > 0) {
                        const struct sym *s = &f.found->syms[lo - 1];
                        if (rel < s->start + (s->size ? s->size : 1))
                                return function_name(s->name);
                }
        }
        Dl_info info;
        if (dladdr((void *)(uintptr_t)address, &info) && info.dli_sname && info.dli_saddr == (void *)(uintptr_t)address)
                return function_name(info.dli_sname);
        char hex[32];
        snprintf(hex, sizeof(hex), "0x%" PRIx64, address);
        return strdup(hex);
}

const char *symbols_name(uint64_t address)
{
        pthread_mutex_lock(&symbols_lock);
        size_t i = (size_t)(address >> 4) & (CACHE_SLOTS - 1);
        for (size_t probes = 0; cache[i].address && cache[i].address != address && probes < CACHE_SLOTS; probes++)
                i = (i + 1) & (CACHE_SLOTS - 1);
        const char *name = cache[i].address == address ? cache[i].name : NULL;
        if (!name) {
                name = resolve(address);
                if (!cache[i].address)
                        cache[i].address = address, cache[i].name = name;
        }
        pthread_mutex_unlock(&symbols_lock);
        return name ? name : "?";
}

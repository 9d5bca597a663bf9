/* engine/slurm_resources.c: the resource parameters (see slurm_resources.h). */
#include "engine/slurm_resources.h"
#include "util/error.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *const slurm_resource_names[SLURM_NRES] = {
    "gpus", "cpus", "mem", "time", "partition", "account", "constraint",
};

int slurm_is_resource(const char *name) {
    for (int i = 0; i < SLURM_NRES; i++)
        if (!strcmp(name, slurm_resource_names[i])) return 1;
    return 0;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* 16G, 500M, 1024 (MB), 2T: digits then at most one unit letter. */
static int valid_mem(const char *s) {
    size_t n = strspn(s, "0123456789");
    if (!n) return 0;
    return !s[n] || (strchr("KMGTkmgt", s[n]) && !s[n + 1]);
}

/* Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
static int valid_time(const char *s) {
    if (!*s || !isdigit((unsigned char)*s)) return 0;
    int dashes = 0, colons = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '-') { if (dashes++ || colons) return 0; }
        else if (*p == ':') { if (++colons > 2) return 0; }
        else if (!isdigit((unsigned char)*p)) return 0;
        if ((*p == '-' || *p == ':') && !isdigit((unsigned char)p[1])) return 0;
    }
    return 1;
}

/* partition, account, constraint: printable, no blanks or quotes. */
static int valid_word(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isgraph((unsigned char)*s) || strchr("'\"\\`$", *s)) return 0;
    return 1;
}

int slurm_resource_check(const char *name, const char *value) {
    if (!strcmp(name, "gpus") || !strcmp(name, "cpus")) {
        if (!all_digits(value) || strlen(value) > 6 || (!strcmp(name, "cpus") && atoi(value) < 1))
            return flab_fail("resource '%s' must be a whole number%s, got '%s'", name,
                             strcmp(name, "cpus") ? "" : " >= 1", value);
        return 0;
    }
    if (!strcmp(name, "mem")) {
        if (valid_mem(value)) return 0;
        return flab_fail("resource 'mem' must be a size like 16G or 500M, got '%s'", value);
    }
    if (!strcmp(name, "time")) {
        if (valid_time(value)) return 0;
        return flab_fail("resource 'time' must be a Slurm time (MM, HH:MM:SS, D-HH:MM), got '%s'",
                         value);
    }
    if (valid_word(value)) return 0;
    return flab_fail("resource '%s' must be one word without quotes, got '%s'", name, value);
}

void slurm_resources_of(const Flabfile *ff, const FfSection *s, const char *values[SLURM_NRES]) {
    for (int i = 0; i < SLURM_NRES; i++) {
        const FfEntry *e = s ? ff_section_get(s, slurm_resource_names[i]) : NULL;
        if (!e) e = ff_section_get(&ff->global, slurm_resource_names[i]);
        values[i] = e && *e->value ? e->value : NULL;
    }
}

void slurm_resources_apply_local(const Flabfile *ff, const char *target) {
    const char *v[SLURM_NRES];
    slurm_resources_of(ff, ff_find_target(ff, target), v);
    /* gpus = 0: the target must not touch a GPU (CUDA sees no device) */
    if (v[0] && !strcmp(v[0], "0")) setenv("CUDA_VISIBLE_DEVICES", "", 1);
}

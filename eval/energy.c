/* eval/energy.c: energy meters for the efficiency report (efficiency.h):
 * NVML (dlopen'ed, GPU), RAPL (sysfs powercap, CPU packages), else an
 * estimate from a configured power.  The meter never fails: a source that
 * cannot be read is skipped and the next one is used. */
#include "eval/efficiency.h"
#include <dirent.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void eval_energy_config_default(EvalEnergyConfig *c) {
    memset(c, 0, sizeof *c);
    c->powercap_root = "/sys/class/powercap";
    c->estimated_watts = EVAL_DEFAULT_ESTIMATED_WATTS;
}

/* ---- RAPL ------------------------------------------------------------------- */

static int read_u64(const char *dir, const char *name, uint64_t *out) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%" SCNu64, out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

/* Package zones are "intel-rapl:N" (sub-zones "intel-rapl:N:M" are parts of
 * them and would count twice).  All must be readable, or RAPL is not used. */
static int rapl_start(EvalEnergyMeter *m) {
    DIR *d = opendir(m->cfg.powercap_root);
    if (!d) return -1;
    struct dirent *e;
    int ok = 1;
    m->n_zones = 0;
    while (ok && (e = readdir(d)) && m->n_zones < EVAL_RAPL_MAX_ZONES) {
        const char *name = e->d_name;
        if (strncmp(name, "intel-rapl:", 11) || strchr(name + 11, ':')) continue;
        char *zone = m->zone[m->n_zones];
        if ((size_t)snprintf(zone, sizeof m->zone[0], "%s/%s", m->cfg.powercap_root, name) >=
            sizeof m->zone[0]) { ok = 0; break; }
        ok = read_u64(zone, "energy_uj", &m->start_uj[m->n_zones]) == 0 &&
             read_u64(zone, "max_energy_range_uj", &m->range_uj[m->n_zones]) == 0;
        m->n_zones++;
    }
    closedir(d);
    return ok && m->n_zones > 0 ? 0 : -1;
}

static double rapl_joules(const EvalEnergyMeter *m) {
    double uj = 0;
    for (int i = 0; i < m->n_zones; i++) {
        uint64_t end;
        if (read_u64(m->zone[i], "energy_uj", &end) != 0) continue;
        uint64_t start = m->start_uj[i];
        uj += (double)(end >= start ? end - start : m->range_uj[i] - start + end);  /* wrapped */
    }
    return uj * 1e-6;
}

/* ---- NVML ------------------------------------------------------------------- */

typedef int (*NvmlInit)(void);
typedef int (*NvmlHandle)(unsigned, void **);
typedef int (*NvmlEnergy)(void *, unsigned long long *);

static int nvml_start(EvalEnergyMeter *m) {
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return -1;
    NvmlInit init = (NvmlInit)dlsym(lib, "nvmlInit_v2");
    NvmlHandle handle = (NvmlHandle)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    NvmlEnergy energy = (NvmlEnergy)dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    void *dev = NULL;
    if (!init || !handle || !energy || init() != 0 ||
        handle((unsigned)m->cfg.gpu_index, &dev) != 0 || energy(dev, &m->nvml_start_mj) != 0) {
        dlclose(lib);
        return -1;
    }
    m->nvml_lib = lib;
    m->nvml_dev = dev;
    return 0;
}

static double nvml_joules(EvalEnergyMeter *m) {
    NvmlEnergy energy = (NvmlEnergy)dlsym(m->nvml_lib, "nvmlDeviceGetTotalEnergyConsumption");
    NvmlInit shutdown = (NvmlInit)dlsym(m->nvml_lib, "nvmlShutdown");
    unsigned long long end = m->nvml_start_mj;
    if (energy) energy(m->nvml_dev, &end);
    if (shutdown) shutdown();
    dlclose(m->nvml_lib);
    m->nvml_lib = NULL;
    return (double)(end - m->nvml_start_mj) * 1e-3;
}

/* ---- the meter -------------------------------------------------------------- */

void eval_energy_start(EvalEnergyMeter *m, const EvalEnergyConfig *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (!m->cfg.powercap_root) m->cfg.powercap_root = "/sys/class/powercap";
    if (m->cfg.estimated_watts <= 0) m->cfg.estimated_watts = EVAL_DEFAULT_ESTIMATED_WATTS;
    m->source = EVAL_ENERGY_ESTIMATED;
    if (cfg->use_gpu && nvml_start(m) == 0) m->source = EVAL_ENERGY_NVML;
    else if (rapl_start(m) == 0) m->source = EVAL_ENERGY_RAPL;
    m->t0 = now_s();
}

double eval_energy_stop(EvalEnergyMeter *m, EvalEnergySource *source) {
    double elapsed = now_s() - m->t0;
    if (source) *source = m->source;
    switch (m->source) {
    case EVAL_ENERGY_NVML: return nvml_joules(m);
    case EVAL_ENERGY_RAPL: return rapl_joules(m);
    default: return m->cfg.estimated_watts * elapsed;
    }
}

const char *eval_energy_label(const EvalEnergyMeter *m, char *buf, size_t cap) {
    if (m->source == EVAL_ENERGY_NVML) snprintf(buf, cap, "nvml");
    else if (m->source == EVAL_ENERGY_RAPL) snprintf(buf, cap, "rapl");
    else snprintf(buf, cap, "estimated (%g W)", m->cfg.estimated_watts);
    return buf;
}

double eval_co2_grams(double joules, double g_per_kwh) {
    return joules / 3.6e6 * g_per_kwh;
}

/* engine/slurm_resources.h: the per-target resource parameters every rule
 * accepts: gpus, cpus, mem, time, partition, account, constraint.
 *
 * They are written like rule parameters (in a target section, or as
 * defaults in [flab]; -D TARGET.gpus=2 and -D flab.gpus=2 override) but are
 * NOT rule parameters: they never enter the target key, since where and
 * with how much a target runs does not change its artifact.  The Slurm
 * executor turns them into sbatch options; local execution ignores them
 * except gpus (documented in docs/SLURM.md). */
#ifndef FLAB_ENGINE_SLURM_RESOURCES_H
#define FLAB_ENGINE_SLURM_RESOURCES_H
#include "engine/flabfile.h"
#include <stddef.h>

#define SLURM_NRES 7
extern const char *const slurm_resource_names[SLURM_NRES];

/* 1 when name is one of the resource parameters. */
int slurm_is_resource(const char *name);

/* Checks a value of resource name (gpus/cpus: integers, mem: 16G / 500M,
 * time: Slurm's [D-]HH:MM:SS forms, others: one word).  0 or -1 with a
 * message (no file:line; the caller adds it). */
int slurm_resource_check(const char *name, const char *value);

/* The effective resources of target section s: its own value, else the
 * [flab] default, else NULL (Slurm's default).  values[i] belongs to
 * slurm_resource_names[i]; pointers into ff (not copied). */
void slurm_resources_of(const Flabfile *ff, const FfSection *s, const char *values[SLURM_NRES]);

/* Local execution, in the rule's child process: only gpus matters, and only
 * gpus = 0 (CUDA_VISIBLE_DEVICES="" hides every GPU); gpus >= 1 leaves the
 * devices as they are (under Slurm, Slurm has set them). */
void slurm_resources_apply_local(const Flabfile *ff, const char *target);
#endif

/*
 * What dstmd's config files share: the loaders of config_pools.c that
 * dstmd_config_load() (config.c) calls in order.
 */
#ifndef DSTMD_CONFIG_INT_H
#define DSTMD_CONFIG_INT_H

#include "dstmd/config.h"

/* "pools": each pool's ranges, exclusions and port-set geometry. */
void config_load_pools(struct dstmd_config *c);
/* "teps": after the pools, which a TEP names. */
void config_load_teps(struct dstmd_config *c);

#endif

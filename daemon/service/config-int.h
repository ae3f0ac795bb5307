/*
 * config-int.h: what the two files of the configuration share: config.c
 * (the keys, validation, the dump) and config-file.c (the file syntax).
 */
#ifndef AWAITD_CONFIG_INT_H
#define AWAITD_CONFIG_INT_H

#include <stdio.h>

struct config;

/* Deep copy of src into dst; -1 when out of memory (dst is then finalised). */
int config_copy(struct config *dst, const struct config *src);

/* Write s as a value that reads back as s: bare, or quoted with \" and \\ escapes. */
void config_file_put_string(const char *s, FILE *f);

#endif

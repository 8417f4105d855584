/* lm_tiny.h — the `lm-tiny` preset's corpus and sample (docs/lm.md "Quick start"). */
#ifndef EIDETIC_LM_TINY_H
#define EIDETIC_LM_TINY_H
#include <stddef.h>
/* The Jargon File prepared with the byte tokenizer, one document per entry paragraph, in the cache
 * directory ($EIDETIC_CACHE, else $XDG_CACHE_HOME/eidetic, else ~/.cache/eidetic); prepared on first
 * use. Writes the dataset directory into out. -1 + eid_error saying how to install the text. */
int lm_tiny_corpus(char *out, size_t n);
/* Prints a greedy continuation of a fixed prompt by the run's checkpoint in run_dir. */
void lm_sample(const char *run_dir);
#endif

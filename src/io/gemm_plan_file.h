/* gemm_plan_file.h — the per-shape library plan (core/gemm_plan.h) as a JSON file, so that a measured
 * plan can be replayed: `--gemm-plan FILE`, and `train`'s checkpoints (gemm_plan.json, read back by
 * --resume). docs/performance.md "Choosing the library per shape" shows the format:
 *
 *   {"eidetic_gemm_plan": 1, "threads": 2, "entries": [
 *     {"precision": "fp32", "ta": 0, "tb": 1, "m": 8192, "n": 384, "k": 128, "team": 2, "mirror": 0,
 *      "use": "onednn-f32", "us": {"openblas": 52.1, "onednn-f32": 41.0}}]}
 *
 * Read strictly: unknown keys, missing keys, wrong types, values out of range, an unknown library, a
 * bf16 library for an fp32 entry and a shape listed twice are errors naming the file and the entry.
 * "us" (measured µs per product) is informational and optional. "threads" records the thread count
 * the plan was measured with; entries only match products run on the same team size. */
#ifndef EIDETIC_GEMM_PLAN_FILE_H
#define EIDETIC_GEMM_PLAN_FILE_H

/* Adds the entries of the JSON text (what: the file name for errors) to the plan table; a shape
 * already in the table keeps its entry. All-or-nothing: on an error nothing is added. */
int gemm_plan_from_json(const char *text, const char *what);
/* The plan table as JSON text (malloc'd), entries in insertion order. */
char *gemm_plan_to_json(void);

int gemm_plan_load(const char *path);
int gemm_plan_save(const char *path); /* crash-safe (io/files.h) */

/* --gemm-plan VALUE: "fixed" (or empty), "measure", or a plan file to replay (shapes it lacks are
 * measured). Sets the mode and loads the file; flag names the option in errors. */
int gemm_plan_apply_spec(const char *value, int verbose, const char *flag);

#endif

/* histo.c: fixed-bucket histograms (histo.h). */
#include <math.h>

#include "histo.h"

const double histo_le_seconds[HISTO_LE_SECONDS_N] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                                     0.5,   1,     2.5,  10,   60,  300};
const double histo_le_fast[HISTO_LE_FAST_N] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
const double histo_le_count[HISTO_LE_COUNT_N] = {1,   2,   4,   8,    16,   32,  64,
                                                 128, 256, 512, 1024, 2048, 4096};

void histo_init(struct histo *h, const double *le, size_t n)
{
	*h = (struct histo){0};
	h->le = le;
	h->n = n > HISTO_MAX_BUCKETS ? HISTO_MAX_BUCKETS : n;
}

void histo_observe(struct histo *h, double v)
{
	size_t i = 0;

	if (isnan(v))
		return;
	while (i < h->n && v > h->le[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

json_t *histo_json(const struct histo *h)
{
	json_t *le = json_array(), *counts = json_array();
	uint64_t cum = 0;

	for (size_t i = 0; i <= h->n && le && counts; i++) {
		cum += h->counts[i];
		if (i < h->n)
			json_array_append_new(le, json_real(h->le[i]));
		json_array_append_new(counts, json_integer((json_int_t)cum));
	}
	return json_pack("{s:o, s:o, s:f, s:I}", "le", le, "counts", counts, "sum", h->sum, "count",
	                 (json_int_t)h->count);
}

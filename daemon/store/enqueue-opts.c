/*
 * enqueue-opts.c: checking an enqueue's options (enqueue-opts.h).
 *
 * Every number is tested as a double or an int64 before anything is cast
 * or added: a delay of 1e19 used to become an int64 by an out-of-range
 * cast and `now + 9223372036854775807` overflowed, both undefined, and the
 * job ran at once. The ranges are small enough (< 2^53) that a double is
 * compared exactly, so an in-range double converts without loss.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enqueue-opts.h"
#include "utf8.h"
#include "errbuf.h"
#include "store.h"

#define ENQUEUE_NAMESHOW 48 /* bytes of an unknown option's name shown in a message */
#define ENQUEUE_KNOWN    "key, delay, at, priority, timeout, after"

/* An integer range an option must fall in; what describes it for messages. */
struct enqueue_range {
	int64_t lo, hi;
	const char *what;
};

/* Append s (len bytes, at most show of them) as printable ASCII, \xNN otherwise. */
static void enqueue_escape(char *buf, size_t cap, const char *s, size_t len, size_t show)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < show && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (len > show && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	if (cap > 0)
		buf[o < cap ? o : cap - 1] = '\0';
}

/* v as the "not ..." part of a message: "1e+19", "-5", "the string \"x\"", "a boolean". */
static void enqueue_describe(const struct enqueue_val *v, char *buf, size_t cap)
{
	char s[64];
	const char *t;

	switch (v->type) {
	case ENQUEUE_V_INTEGER:
		snprintf(buf, cap, "%lld", (long long)v->i);
		break;
	case ENQUEUE_V_REAL:
		snprintf(buf, cap, "%.17g", v->d);
		break;
	case ENQUEUE_V_STRING:
		enqueue_escape(s, sizeof s, v->s, v->len, 32);
		snprintf(buf, cap, "the string \"%s\" (%zu bytes)", s, v->len);
		break;
	case ENQUEUE_V_OTHER:
		t = v->tname ? v->tname : "value";
		if (strcmp(t, "null") == 0 || strcmp(t, "nil") == 0)
			snprintf(buf, cap, "%s", t);
		else
			snprintf(buf, cap, "%s %s", strchr("aeiou", t[0]) ? "an" : "a", t);
		break;
	}
}

/*
 * v as an integer in rg: 0 with *out set, or -1 with err filled. An
 * integral double is accepted; it is compared before it is converted.
 */
static int enqueue_int(const char *name, const struct enqueue_val *v,
                       const struct enqueue_range *rg, int64_t *out, char *err, size_t errlen)
{
	char got[96];

	if (v->type == ENQUEUE_V_INTEGER && v->i >= rg->lo && v->i <= rg->hi) {
		*out = v->i;
		return 0;
	}
	if (v->type == ENQUEUE_V_REAL && isfinite(v->d) && v->d == trunc(v->d) &&
	    v->d >= (double)rg->lo && v->d <= (double)rg->hi) {
		*out = (int64_t)v->d;
		return 0;
	}
	enqueue_describe(v, got, sizeof got);
	errbuf_set(err, errlen, "%s must be %s, not %s", name, rg->what, got);
	return -1;
}

void enqueue_opts_init(struct enqueue_opts *o, int64_t now)
{
	memset(o, 0, sizeof *o);
	o->now = now;
	o->delay = -1;
	o->at = -1;
}

int enqueue_opts_set(struct enqueue_opts *o, const char *name, size_t namelen,
                     const struct enqueue_val *v, char *err, size_t errlen)
{
	struct enqueue_range rg;
	char what[160], got[96];

#define IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, namelen) == 0)
	if (IS("key")) {
		if (v->type == ENQUEUE_V_STRING && v->len > 0 && v->len <= ENQUEUE_MAX_KEY &&
		    utf8_valid((const unsigned char *)v->s, v->len)) {
			o->key = v->s;
			o->keylen = v->len;
			return 0;
		}
		enqueue_describe(v, got, sizeof got);
		errbuf_set(err, errlen,
		           "key must be a non-empty string of at most %d bytes of UTF-8 "
		           "without NUL, not %s",
		           ENQUEUE_MAX_KEY, got);
		return -1;
	}
	if (IS("delay")) {
		snprintf(what, sizeof what, "an integer number of ms from 0 to %lld (10 years)",
		         ENQUEUE_MAX_DELAY_MS);
		rg = (struct enqueue_range){0, ENQUEUE_MAX_DELAY_MS, what};
		return enqueue_int("delay", v, &rg, &o->delay, err, errlen);
	}
	if (IS("at")) {
		snprintf(what, sizeof what,
		         "an integer time in unix epoch ms from 60 s ago to 10 years ahead "
		         "(now is %lld)",
		         (long long)o->now);
		rg = (struct enqueue_range){o->now - ENQUEUE_MAX_PAST_MS,
		                            o->now + ENQUEUE_MAX_DELAY_MS, what};
		return enqueue_int("at", v, &rg, &o->at, err, errlen);
	}
	if (IS("priority")) {
		snprintf(what, sizeof what, "an integer from %d to %d", ENQUEUE_MIN_PRIORITY,
		         ENQUEUE_MAX_PRIORITY);
		rg = (struct enqueue_range){ENQUEUE_MIN_PRIORITY, ENQUEUE_MAX_PRIORITY, what};
		return enqueue_int("priority", v, &rg, &o->priority, err, errlen);
	}
	if (IS("after")) {
		int64_t id;
		rg = (struct enqueue_range){
		    1, INT64_MAX / 2, "a job id (an integer > 0), or a list of 1 to 100 of them"};
		if (enqueue_int("after", v, &rg, &id, err, errlen) < 0)
			return -1;
		for (size_t i = 0; i < o->nafter; i++)
			if (o->after[i] == id)
				return 0;
		if (o->nafter == ENQUEUE_MAX_AFTER) {
			errbuf_set(err, errlen, "after names more than %d jobs", ENQUEUE_MAX_AFTER);
			return -1;
		}
		o->after[o->nafter++] = id;
		return 0;
	}
	if (IS("timeout")) {
		snprintf(what, sizeof what, "an integer number of ms from 1 to %lld (30 days)",
		         ENQUEUE_MAX_TIMEOUT_MS);
		rg = (struct enqueue_range){1, ENQUEUE_MAX_TIMEOUT_MS, what};
		return enqueue_int("timeout", v, &rg, &o->timeout_ms, err, errlen);
	}
#undef IS
	enqueue_escape(got, sizeof got, name, namelen, ENQUEUE_NAMESHOW);
	errbuf_set(err, errlen, "unknown option \"%s\" (known: " ENQUEUE_KNOWN ")", got);
	return -1;
}

int enqueue_opts_check(const struct enqueue_opts *o, char *err, size_t errlen)
{
	if (o->delay >= 0 && o->at >= 0) {
		errbuf_set(err, errlen, "delay and at both given: give one (delay %lld, at %lld)",
		           (long long)o->delay, (long long)o->at);
		return -1;
	}
	return 0;
}

int64_t enqueue_opts_run_at(const struct enqueue_opts *o)
{
	/* both bounded by enqueue_opts_set, so the sum cannot overflow */
	if (o->at >= 0)
		return o->at;
	if (o->delay > 0)
		return o->now + o->delay;
	return 0;
}

int enqueue_opts_apply(const struct enqueue_opts *o, struct store_req *r)
{
	r->key = NULL;
	if (o->key) {
		r->key = malloc(o->keylen + 1);
		if (!r->key)
			return -1;
		memcpy(r->key, o->key, o->keylen);
		r->key[o->keylen] = '\0';
	}
	r->run_at = enqueue_opts_run_at(o);
	r->priority = o->priority;
	r->timeout_ms = o->timeout_ms;
	r->after = NULL;
	r->nafter = 0;
	if (o->nafter) {
		if (!(r->after = malloc(o->nafter * sizeof *r->after))) {
			free(r->key);
			r->key = NULL;
			return -1;
		}
		memcpy(r->after, o->after, o->nafter * sizeof *r->after);
		r->nafter = o->nafter;
	}
	return 0;
}

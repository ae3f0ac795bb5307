/* tests/bench/w7_ping.c: W7 load generator for awaitd's control socket.
 *
 *   w7_ping SOCKET CLIENTS SECONDS [awaitd|redis]
 *   w7_ping --probe SOCKET [awaitd|redis]   one connect + ping; exit 0 on pong
 *
 * Opens CLIENTS unix-socket connections, one thread each. Every thread
 * sends {"id":N,"cmd":"ping"}\n, reads the whole response line, checks it
 * is {"id":N,"ok":true,"result":"pong"} (whitespace tolerated), and
 * repeats - no pipelining. The first 0.5 s are a warm-up that is not
 * counted; then SECONDS of measurement. Latency per request is taken with
 * CLOCK_MONOTONIC in ns. Prints one JSON line on stdout:
 *   {"bench":"ping","impl":"awaitd","clients":16,"requests":N,"errors":E,
 *    "per_s":..,"p50_us":..,"p99_us":..}
 * With "redis" the same loop speaks Redis's inline protocol instead
 * (PING\r\n -> +PONG\r\n), so both servers can be measured with one and the
 * same client ("impl":"redis","client":"w7_ping").
 * Standalone: cc -O2 -pthread -o w7_ping w7_ping.c
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_NS 500000000ull
#define RBUF 65536

static const char *sock_path;
static int redis; /* protocol: 0 awaitd JSON lines, 1 redis inline */
static uint64_t t_begin, t_warm_end, t_end; /* set before the barrier opens */
static pthread_barrier_t barrier;

struct worker {
	pthread_t th;
	int fd;
	int idx;
	uint64_t *lat; /* ns */
	size_t n, cap;
	uint64_t errors;
	uint64_t warm;
	uint64_t last_done; /* monotonic ns of the last counted completion */
	char first_err[160];
	int io_failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* The value after "key": in [s,e), or NULL. Top-level objects only have
 * plain keys here, so a textual search is enough for a check. */
static const char *find_val(const char *s, const char *e, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = s; p + kl + 2 <= e; p++) {
		if (p[0] == '"' && memcmp(p + 1, key, kl) == 0 && p[1 + kl] == '"') {
			const char *q = skip_ws(p + kl + 2, e);
			if (q < e && *q == ':')
				return skip_ws(q + 1, e);
		}
	}
	return NULL;
}

static int check_pong(const char *s, size_t len, unsigned long long id)
{
	const char *e = s + len, *v;
	if (redis)
		return len == 6 && memcmp(s, "+PONG\r", 6) == 0;
	if (len == 0 || s[0] != '{')
		return 0;
	if (!(v = find_val(s, e, "id")))
		return 0;
	char *end;
	unsigned long long got = strtoull(v, &end, 10);
	if (end == v || got != id)
		return 0;
	if (!(v = find_val(s, e, "ok")) || e - v < 4 || memcmp(v, "true", 4) != 0)
		return 0;
	if (!(v = find_val(s, e, "result")) || e - v < 6 || memcmp(v, "\"pong\"", 6) != 0)
		return 0;
	return 1;
}

static void note_err(struct worker *w, const char *what, const char *line, size_t len)
{
	w->errors++;
	if (w->first_err[0])
		return;
	if (len > 100)
		len = 100;
	snprintf(w->first_err, sizeof w->first_err, "%s%.*s", what, (int)len, line ? line : "");
	for (char *p = w->first_err; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '\'';
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char req[96];
	char buf[RBUF];
	size_t have = 0; /* bytes in buf */
	unsigned long long id = (unsigned long long)w->idx * 1000000000ull;

	pthread_barrier_wait(&barrier);
	for (;;) {
		id++;
		int rl = redis ? snprintf(req, sizeof req, "PING\r\n")
		               : snprintf(req, sizeof req, "{\"id\":%llu,\"cmd\":\"ping\"}\n", id);
		uint64_t t0 = now_ns();
		if (t0 >= t_end)
			break;
		for (int off = 0; off < rl;) {
			ssize_t k = write(w->fd, req + off, (size_t)(rl - off));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				note_err(w, "write failed: ", strerror(errno), strlen(strerror(errno)));
				w->io_failed = 1;
				return NULL;
			}
			off += (int)k;
		}
		/* read up to a newline; bytes after it (should be none) are an error */
		char *nl;
		size_t scan = 0;
		for (;;) {
			nl = memchr(buf + scan, '\n', have - scan);
			if (nl)
				break;
			scan = have;
			if (have == sizeof buf) { /* overlong line: drop it */
				note_err(w, "overlong response", NULL, 0);
				have = scan = 0;
			}
			ssize_t k = read(w->fd, buf + have, sizeof buf - have);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				note_err(w, k == 0 ? "connection closed" : "read failed: ",
				         k == 0 ? NULL : strerror(errno), k == 0 ? 0 : strlen(strerror(errno)));
				w->io_failed = 1;
				return NULL;
			}
			have += (size_t)k;
		}
		uint64_t t1 = now_ns();
		size_t ll = (size_t)(nl - buf);
		int good = check_pong(buf, ll, id);
		if (!good)
			note_err(w, "bad response: ", buf, ll);
		size_t rest = have - ll - 1;
		if (rest) {
			note_err(w, "unexpected extra bytes: ", nl + 1, rest);
			memmove(buf, nl + 1, rest);
		}
		have = rest;
		if (t0 < t_warm_end) {
			w->warm++;
			continue;
		}
		if (!good)
			continue;
		if (w->n == w->cap) {
			size_t nc = w->cap ? w->cap * 2 : 65536;
			uint64_t *nlat = realloc(w->lat, nc * sizeof *nlat);
			if (!nlat) {
				note_err(w, "out of memory", NULL, 0);
				return NULL;
			}
			w->lat = nlat;
			w->cap = nc;
		}
		w->lat[w->n++] = t1 - t0;
		w->last_done = t1;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)n);
	if (i >= n)
		i = n - 1;
	return (double)v[i] / 1000.0;
}

static int set_proto(const char *p)
{
	if (strcmp(p, "redis") == 0)
		redis = 1;
	else if (strcmp(p, "awaitd") != 0)
		return -1;
	return 0;
}

/* One connection, one ping, a 1 s receive timeout: 0 when it answered pong. */
static int probe(const char *path)
{
	int fd = connect_unix(path);
	if (fd < 0)
		return 1;
	struct timeval tv = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	const char *req = redis ? "PING\r\n" : "{\"id\":1,\"cmd\":\"ping\"}\n";
	char buf[512];
	size_t have = 0;
	char *nl = NULL;
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return 1;
	}
	while (!nl && have < sizeof buf) {
		ssize_t k = read(fd, buf + have, sizeof buf - have);
		if (k <= 0)
			break;
		have += (size_t)k;
		nl = memchr(buf, '\n', have);
	}
	close(fd);
	return nl && check_pong(buf, (size_t)(nl - buf), 1) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && argc <= 4 && strcmp(argv[1], "--probe") == 0) {
		if (argc == 4 && set_proto(argv[3]) < 0)
			return 2;
		return probe(argv[2]);
	}
	if (argc < 4 || argc > 5 || (argc == 5 && set_proto(argv[4]) < 0)) {
		fprintf(stderr, "usage: %s SOCKET CLIENTS SECONDS [awaitd|redis]\n"
		                "       %s --probe SOCKET [awaitd|redis]\n", argv[0], argv[0]);
		return 2;
	}
	sock_path = argv[1];
	int clients = atoi(argv[2]);
	double secs = atof(argv[3]);
	if (clients <= 0 || secs <= 0) {
		fprintf(stderr, "w7_ping: CLIENTS and SECONDS must be positive\n");
		return 2;
	}
	struct worker *ws = calloc((size_t)clients, sizeof *ws);
	if (!ws)
		return 1;
	for (int i = 0; i < clients; i++) {
		ws[i].idx = i;
		ws[i].fd = connect_unix(sock_path);
		if (ws[i].fd < 0) {
			fprintf(stderr, "w7_ping: connect %s: %s\n", sock_path, strerror(errno));
			printf("{\"bench\":\"ping\",\"impl\":\"%s\",\"client\":\"w7_ping\",\"clients\":%d,"
			       "\"error\":\"connect failed: %s\"}\n", redis ? "redis" : "awaitd", clients, strerror(errno));
			return 1;
		}
	}
	pthread_barrier_init(&barrier, NULL, (unsigned)clients + 1);
	for (int i = 0; i < clients; i++)
		if (pthread_create(&ws[i].th, NULL, run, &ws[i]) != 0) {
			fprintf(stderr, "w7_ping: pthread_create failed\n");
			return 1;
		}
	t_begin = now_ns();
	t_warm_end = t_begin + WARMUP_NS;
	t_end = t_warm_end + (uint64_t)(secs * 1e9);
	pthread_barrier_wait(&barrier);

	size_t total = 0;
	uint64_t errors = 0, warm = 0, last = t_warm_end;
	int io_failed = 0;
	const char *first_err = "";
	for (int i = 0; i < clients; i++) {
		pthread_join(ws[i].th, NULL);
		total += ws[i].n;
		errors += ws[i].errors;
		warm += ws[i].warm;
		io_failed += ws[i].io_failed;
		if (ws[i].last_done > last)
			last = ws[i].last_done;
		if (!first_err[0] && ws[i].first_err[0])
			first_err = ws[i].first_err;
		close(ws[i].fd);
	}
	uint64_t *all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		return 1;
	size_t k = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
		k += ws[i].n;
		free(ws[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_u64);
	double span = (double)(last - t_warm_end) / 1e9;
	if (span < secs)
		span = secs;
	double sum = 0;
	for (size_t i = 0; i < total; i++)
		sum += (double)all[i];
	printf("{\"bench\":\"ping\",\"impl\":\"%s\",\"client\":\"w7_ping\",\"clients\":%d,\"seconds\":%.3f,\"requests\":%zu,"
	       "\"warmup_requests\":%llu,\"errors\":%llu,\"per_s\":%.0f,\"mean_us\":%.1f,\"p50_us\":%.1f,"
	       "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
	       redis ? "redis" : "awaitd", clients, span, total, (unsigned long long)warm, (unsigned long long)errors,
	       (double)total / span, total ? sum / (double)total / 1000.0 : 0.0,
	       pct_us(all, total, 50), pct_us(all, total, 90), pct_us(all, total, 99),
	       pct_us(all, total, 99.9), total ? (double)all[total - 1] / 1000.0 : 0.0);
	if (io_failed)
		printf(",\"clients_failed\":%d", io_failed);
	if (first_err[0])
		printf(",\"first_error\":\"%s\"", first_err);
	printf("}\n");
	free(all);
	free(ws);
	return (errors || io_failed || total == 0) ? 1 : 0;
}

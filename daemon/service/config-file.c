/*
 * config-file.c: the syntax of the config file (config.h): reading it
 * line by line into config_set, and quoting a string value so that it
 * reads back the same (config_dump).
 *
 * Invariants:
 *  - config_load works on a copy and swaps it in only when the whole file
 *    was read without error, so a bad reload keeps the running
 *    configuration.
 *  - Lines are read into a fixed buffer (CONFIG_LINE_MAX): a hostile file
 *    cannot make the parser allocate more than that per line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-int.h"
#include "config.h"
#include "errbuf.h"

#define CONFIG_LINE_MAX 4096 /* bytes per line, newline excluded */

/*
 * Read one line into buf (CONFIG_LINE_MAX + 1 bytes), without its newline.
 * Returns 1 for a line, 0 at end of file, -1 when it is too long, -2 when
 * it holds a NUL byte, -3 on a read error. The rest of a bad line is not
 * consumed: the caller stops at the first error.
 */
static int read_line(FILE *f, char *buf)
{
	size_t n = 0;
	int ch, nul = 0;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (n == CONFIG_LINE_MAX)
			return -1;
		if (ch == 0)
			nul = 1;
		buf[n++] = (char)ch;
	}
	buf[n] = 0;
	if (ferror(f))
		return -3;
	if (nul)
		return -2;
	return ch == EOF && n == 0 ? 0 : 1;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/*
 * Split a line in place into *key and *value (both trimmed; the value
 * unquoted, comments dropped). Returns 1 for a key, 0 for a blank or
 * comment line, -1 with msg filled for a malformed line.
 */
static int parse_line(char *line, char **key, char **value, char *msg, size_t msglen)
{
	char *p = line, *eq, *end, *out;
	char kbuf[64];

	while (is_space(*p))
		p++;
	if (!*p || *p == '#')
		return 0;
	eq = strchr(p, '=');
	if (!eq) {
		errbuf_set(msg, msglen, "missing '=' (expected \"key = value\")");
		return -1;
	}
	end = eq;
	while (end > p && is_space(end[-1]))
		end--;
	*end = 0;
	if (end == p) {
		errbuf_set(msg, msglen, "missing key before '='");
		return -1;
	}
	*key = p;

	p = eq + 1;
	while (is_space(*p))
		p++;
	if (*p == '"') {
		/* Unescape in place: out never passes p. */
		out = *value = ++p;
		for (;;) {
			if (!*p) {
				errbuf_set(msg, msglen, "%s: unterminated quote",
				           errbuf_shown(*key, strlen(*key), kbuf, sizeof kbuf));
				return -1;
			}
			if (*p == '"')
				break;
			if (*p == '\\') {
				if (p[1] != '"' && p[1] != '\\') {
					errbuf_set(
					    msg, msglen,
					    "%s: bad escape '\\%c' in quoted value (only \\\" and "
					    "\\\\)",
					    errbuf_shown(*key, strlen(*key), kbuf, sizeof kbuf),
					    p[1] >= 0x20 && p[1] < 0x7f ? p[1] : '?');
					return -1;
				}
				p++;
			}
			*out++ = *p++;
		}
		*out = 0;
		p++;
		while (is_space(*p))
			p++;
		if (*p && *p != '#') {
			errbuf_set(msg, msglen, "%s: unexpected text after the closing quote",
			           errbuf_shown(*key, strlen(*key), kbuf, sizeof kbuf));
			return -1;
		}
		return 1;
	}
	/* Unquoted: a '#' at the start or after whitespace begins a comment. */
	*value = p;
	for (end = p; *end; end++)
		if (*end == '#' && (end == p || is_space(end[-1])))
			break;
	while (end > p && is_space(end[-1]))
		end--;
	*end = 0;
	return 1;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config tmp;
	char *line = NULL, *key, *value;
	char msg[1024];
	FILE *f;
	int rc = -1, lineno = 0, lrc, saved = 0;

	memset(&tmp, 0, sizeof tmp); /* config_fini is safe on it from here */
	f = fopen(path, "r");
	if (!f) {
		saved = errno;
		errbuf_set(err, errlen, "%s: cannot open: %s", path, strerror(saved));
		goto out;
	}
	line = malloc(CONFIG_LINE_MAX + 1);
	if (!line || config_copy(&tmp, c) < 0) {
		errbuf_set(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		lineno++;
		lrc = read_line(f, line);
		if (lrc == 0)
			break;
		if (lrc == -1) {
			errbuf_set(err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
			           CONFIG_LINE_MAX);
			goto out;
		}
		if (lrc == -2) {
			errbuf_set(err, errlen, "%s:%d: NUL byte in line", path, lineno);
			goto out;
		}
		if (lrc == -3) {
			errbuf_set(err, errlen, "%s:%d: read error: %s", path, lineno,
			           strerror(errno));
			goto out;
		}
		lrc = parse_line(line, &key, &value, msg, sizeof msg);
		if (lrc == 0)
			continue;
		if (lrc < 0 || config_set(&tmp, key, value, msg, sizeof msg) < 0) {
			errbuf_set(err, errlen, "%s:%d: %s", path, lineno, msg);
			goto out;
		}
	}
	config_fini(c);
	*c = tmp;
	memset(&tmp, 0, sizeof tmp);
	rc = 0;
out:
	config_fini(&tmp);
	free(line);
	if (f)
		fclose(f);
	if (saved)
		errno = saved; /* so the caller can tell ENOENT from the rest */
	return rc;
}

/* A string needs quotes when unquoted it would read back differently. */
static int needs_quotes(const char *s)
{
	size_t n = strlen(s);

	return n == 0 || is_space(s[0]) || is_space(s[n - 1]) || s[0] == '"' || strchr(s, '#');
}

void config_file_put_string(const char *s, FILE *f)
{
	if (!needs_quotes(s)) {
		fputs(s, f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putc('\\', f);
		putc(*s, f);
	}
	putc('"', f);
}

/*
 * client.h: awaitctl's side of the control socket: connect, send one
 * request, read its event lines and its one response; parse awaitctl's
 * command line against a command table; map outcomes to exit codes.
 *
 * The wire format is proto.h's (SPEC section 6). The client trusts the
 * daemon no more than the daemon trusts it: a reply line longer than
 * CLIENT_MAX_LINE, a line that is not JSON, or a line that is not a
 * response to our id ends the request with a transport error, never a
 * crash or an unbounded allocation.
 *
 * The command table belongs to the caller (awaitctl.c): one struct
 * client_cmd per command, naming its positional arguments and options and
 * the request key each one fills, so a new command is one table entry and
 * one output function. Errors are written into the caller's err buffer
 * (errlen bytes; err may be NULL when errlen is 0).
 *
 * Part ctl (daemon/ctl/): awaitctl, its client and its views. It may call
 * control (the protocol), store (the enqueue limits it checks) and base.
 */
#ifndef AWAITD_CLIENT_H
#define AWAITD_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#define CLIENT_DEFAULT_SOCKET "./awaitd.sock" /* when neither -s nor $AWAITD_SOCKET */
#define CLIENT_SOCKET_ENV     "AWAITD_SOCKET"
#define CLIENT_MAX_LINE       ((size_t)64 << 20) /* bytes in a reply line without the '\n' */

/* Exit codes of awaitctl (SPEC section 6). */
#define CLIENT_EXIT_OK          0
#define CLIENT_EXIT_FAILED      1   /* the command or the job failed */
#define CLIENT_EXIT_USAGE       2   /* bad command line */
#define CLIENT_EXIT_UNREACHABLE 3   /* the daemon cannot be reached */
#define CLIENT_EXIT_NOT_FOUND   4   /* no_such_script, no_such_job */
#define CLIENT_EXIT_DENIED      5   /* permission_denied, EACCES on connect */
#define CLIENT_EXIT_TIMEOUT     124 /* timeout from the daemon or --timeout MS */

/* Outcomes of client_request. */
#define CLIENT_OK          0  /* ok:true; *result is set */
#define CLIENT_REPLY_ERROR 1  /* ok:false; *error is set */
#define CLIENT_TRANSPORT   -1 /* I/O error, EOF, malformed or oversized reply */
#define CLIENT_TIMEOUT     -2 /* no final response before the deadline */
#define CLIENT_INTERRUPTED -3 /* a signal handler interrupted the wait (EINTR) */

/* Called once per event line with the "event" value (borrowed). */
typedef void client_event_fn(json_t *event, void *arg);

/*
 * Connect a blocking, close-on-exec AF_UNIX SOCK_STREAM socket to path.
 * Returns the fd (the caller closes it), or -1 with errno kept from the
 * failing call (ENAMETOOLONG for a path that does not fit sun_path) and
 * err naming the path, the reason and how to start the daemon.
 */
int client_connect(const char *path, char *err, size_t errlen);

/*
 * Send {"id":id,"cmd":cmd,"args":args} on fd and read lines until the
 * response to id. args is stolen (decref'd whatever happens); NULL sends
 * {}. Every {"id":id,"event":...} line before the response is passed to
 * on_event (may be NULL) as it arrives. fd is switched to non-blocking.
 *
 * timeout_ms < 0 waits forever; otherwise the whole exchange must end
 * within timeout_ms of the call (poll with a monotonic deadline).
 *
 * Returns CLIENT_OK with *result a new reference (json null when the
 * response has no "result"); CLIENT_REPLY_ERROR with *error a new
 * reference to the error object, whose "code" and "message" are strings;
 * CLIENT_TRANSPORT, CLIENT_TIMEOUT or CLIENT_INTERRUPTED with err filled.
 * *result and *error are NULL unless set as said.
 */
int client_request(int fd, json_int_t id, const char *cmd, json_t *args, int timeout_ms,
                   client_event_fn *on_event, void *arg, json_t **result, json_t **error, char *err,
                   size_t errlen);

/*
 * The exit code for a response error code: NULL (success) gives 0;
 * no_such_script, no_such_job 4; permission_denied 5; timeout 124;
 * anything else 1.
 */
int client_exit_code(const char *error_code);

/* The exit code for a failed client_connect's errno: EACCES, EPERM 5; else 3. */
int client_connect_exit_code(int errnum);

/* How one argument on the command line becomes one key of the request. */
enum client_arg_type {
	CLIENT_ARG_STRING, /* a JSON string, as typed */
	CLIENT_ARG_JSON,   /* any JSON document, decoded here; invalid JSON is a usage error */
	CLIENT_ARG_UINT,   /* a decimal integer 0..INT_MAX (ms, counts) */
	CLIENT_ARG_INT,    /* a decimal integer INT_MIN..INT_MAX (priority) */
	CLIENT_ARG_ID,     /* a job id: an integer when all digits, else a string */
	CLIENT_ARG_FLAG,   /* an option without a value: true when given, else false */
	CLIENT_ARG_IDS,    /* job ids "1,2,3": a JSON array of integers > 0 */
};

struct client_arg {
	const char *opt; /* "--timeout", "-f"; NULL for a positional argument */
	const char *key; /* the key it fills in the request's args */
	enum client_arg_type type;
	long long min,
	    max; /* UINT, INT: the range when max > min (the daemon's); else the type's */
};

struct client_opts;

/* Print a successful result for the user; returns the exit code. */
typedef int client_cmd_fn(const struct client_opts *o, json_t *result);

struct client_cmd {
	const char *name;              /* the command, sent as "cmd" */
	int min_pos, max_pos;          /* positional arguments accepted */
	const struct client_arg *args; /* positionals in order, then options; ends at key NULL */
	client_cmd_fn *fn;             /* awaitctl's output function */
	const char *usage;             /* "run NAME [ARGS_JSON] [--timeout MS]" */
	const char *deadline_key;      /* args key that also takes the client deadline; or NULL */
};

struct client_opts {
	const char *socket;           /* borrowed: -s, $AWAITD_SOCKET or CLIENT_DEFAULT_SOCKET */
	int json;                     /* --json: print JSON documents */
	int timeout_ms;               /* ms, client-side deadline; -1 for none */
	int help;                     /* -h/--help was given: print usage, exit 0 */
	const struct client_cmd *cmd; /* borrowed from the table; NULL with help */
	json_t *args;                 /* owned: the request's args object */
};

/*
 * Parse awaitctl's argv against cmds (ended by an entry with name NULL):
 *
 *   awaitctl [-s SOCKET] [--json] [--timeout MS] COMMAND [ARGS...]
 *
 * Options take "--opt VALUE" or "--opt=VALUE"; "--" ends them. After the
 * command, the command's own options come first, so `run NAME --timeout
 * MS` fills args.timeout while `--timeout MS` before the command is the
 * client's deadline; the global options are also accepted after the
 * command when it has no option of that name. A word starting with '-'
 * and a digit is a positional (a negative number as ARGS_JSON). A FLAG
 * option is always sent (false when absent); other absent arguments are
 * not sent. When the command has a deadline_key ("timeout" for run and
 * wait) and that key was not given, the client deadline is also sent
 * there, so that the daemon cancels the job rather than leaving it running
 * after the client gave up.
 *
 * Returns 0 with *o filled (release with client_opts_fini), or -1 with err
 * saying what is wrong (the caller prints usage and exits 2) and *o
 * holding nothing to free. -h/--help anywhere returns 0 with o->help set.
 */
int client_parse_args(int argc, char **argv, const struct client_cmd *cmds, struct client_opts *o,
                      char *err, size_t errlen);

/* Release what client_parse_args filled and zero it; safe twice. */
void client_opts_fini(struct client_opts *o);

#endif

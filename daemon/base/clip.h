/*
 * clip.h: showing stored values that may be too big to show.
 *
 * A job's args, result, error and step journals are stored as JSON text.
 * A row written before max_result_bytes existed, or under a higher limit,
 * can be far bigger than a response line may be; every view of a job goes
 * through here so that such a value is shown as a short preview with its
 * real size instead of making the command fail.
 */
#ifndef AWAITD_CLIP_H
#define AWAITD_CLIP_H

#include <stddef.h>

#include <jansson.h>

#define CLIP_PREVIEW_MAX 1024 /* bytes of stored text a preview keeps, at most */

/*
 * The first bytes of text (len bytes) as a JSON string: at most max bytes,
 * cut back to a UTF-8 boundary, invalid UTF-8 bytes shown as '?', then
 * "…". The whole text when len <= max. NULL when out of memory.
 */
json_t *clip_preview(const char *text, size_t len, size_t max);

/*
 * The stored JSON text as a value to show: parsed when its length is at
 * most max (JSON null when text is NULL or does not parse), otherwise the
 * preview of its first min(max, CLIP_PREVIEW_MAX) bytes with *clipped set
 * to 1 (0 otherwise). NULL only when out of memory.
 */
json_t *clip_json(const char *text, size_t max, int *clipped);

/*
 * The "code" of a stored error {"code":"...", ...} read from the start of
 * its text without parsing the rest (which may be 100 MB), into buf; NULL
 * when the text does not start that way or the code is not a short plain
 * string.
 */
const char *clip_error_code(const char *text, char *buf, size_t len);

/*
 * A stored error as a value to show: the parsed object when text is at
 * most max bytes; otherwise {code, message: preview, truncated: true,
 * bytes: N}. JSON null for NULL text. NULL only when out of memory.
 */
json_t *clip_error(const char *text, size_t max);

#endif

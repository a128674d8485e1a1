/*-------------------------------------------------------------------------
 *
 * jsonb_util.h
 *	  Small helpers over PostgreSQL's jsonb C API used by the form and
 *	  answer validators, plus JSON-path bookkeeping for error messages.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_JSONB_UTIL_H
#define STATUS_CHECKER_JSONB_UTIL_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* A JSON path such as $.questions[2].choices[0] under construction. */
typedef struct JPath
{
	StringInfoData buf;
} JPath;

extern char *vformat_message(const char *fmt, va_list args) pg_attribute_printf(1, 0);
extern void jpath_init(JPath *p);
extern int	jpath_push_key(JPath *p, const char *key);
extern int	jpath_push_index(JPath *p, int i);
extern void jpath_pop(JPath *p, int mark);

/* container accessors; all return NULL / false when absent or wrong type */
extern JsonbValue *jb_get(JsonbContainer *c, const char *key);
extern JsonbValue *jb_elem(JsonbContainer *c, int i);
extern bool jb_is_object(JsonbValue *v);
extern bool jb_is_array(JsonbValue *v);
extern JsonbContainer *jb_container(JsonbValue *v);
extern int	jb_array_size(JsonbContainer *c);
extern char *jb_cstring(JsonbValue *v);	/* NULL unless a string */
extern const char *jb_type_name(JsonbValue *v);
extern bool jb_equal_scalar(JsonbValue *a, JsonbValue *b);

/* the keys of an object, in storage order (palloc'd C strings) */
extern List *jb_object_keys(JsonbContainer *c);

#endif

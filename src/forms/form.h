/*-------------------------------------------------------------------------
 *
 * form.h
 *	  The report-form model shared by the definition validator (forms) and
 *	  the answer validator (reports).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_FORM_H
#define STATUS_CHECKER_FORM_H

#include "utils/jsonb.h"

typedef enum QuestionType
{
	QT_INVALID = 0,
	QT_SINGLE,
	QT_MULTI,
	QT_NUMBER,
	QT_BOOLEAN,
	QT_TEXT,
	QT_LOCATION,
	QT_PHOTO
} QuestionType;

extern void form_validate_definition(Jsonb *def);
extern QuestionType form_question_type(const char *type);
extern JsonbContainer *form_find_choice(JsonbContainer *question, const char *value);
extern JsonbContainer *form_find_level(JsonbContainer *root, int level);
extern int	form_lowest_level(JsonbContainer *root);

#endif

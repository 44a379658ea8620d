/*
 * The option-table checks of server/config_table_test.c over the core's table
 * and both app kinds' (this binary links the model and WSGI kinds).
 */
#include "server/model/model.h"
#include "server/wsgi/wsgi.h"

static const app_kind *const test_kinds[] = {&app_kind_model, &app_kind_wsgi, NULL};
#define CONFIG_TABLE_KINDS test_kinds
#include "server/config_table_test.c"

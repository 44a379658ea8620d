/*
 * The option-table checks of server/config_table_test.c over the core's table
 * and the WSGI kind's (server/model/config_table_test.c does the model's:
 * each kind's test binary links only what its module needs).
 */
#include "server/wsgi/wsgi.h"

static const app_kind *const test_kinds[] = {&app_kind_wsgi, NULL};
#define CONFIG_TABLE_KINDS test_kinds
#include "server/config_table_test.c"

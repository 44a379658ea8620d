/*
 * The option-table checks of server/config_table_test.c over the core's table
 * and the model kind's.
 */
#include "server/model/model.h"

static const app_kind *const test_kinds[] = {&app_kind_model, NULL};
#define CONFIG_TABLE_KINDS test_kinds
#include "server/config_table_test.c"

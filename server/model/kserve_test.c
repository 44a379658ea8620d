#include "server/model/kserve.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(kserve_request *r, const char *json, char *err)
{
    return kserve_request_parse(r, json, strlen(json), (size_t)-1, NULL, err, KSERVE_ERRLEN);
}

Test(kserve, json_tensor_parses_flat_and_nested_with_id)
{
    kserve_request r;
    char err[KSERVE_ERRLEN];
    const char *j =
        "{\"id\":\"42\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\","
        "\"data\":[[1,2.5],[-3e2,0.1]]}],\"outputs\":[{\"name\":\"y\"}]}";
    cr_assert_eq(parse(&r, j, err), 0, "%s", err);
    cr_assert_str_eq(r.id, "42");
    cr_assert_eq(r.n_inputs, 1);
    const kserve_tensor *t = &r.inputs[0];
    cr_assert_eq(t->count, 4);
    cr_assert_eq(t->rank, 2);
    const float *f = t->data;
    cr_assert_eq(f[1], 2.5f);
    cr_assert_eq(f[2], -300.0f);
    cr_assert_eq(f[3], 0.1f);
    cr_assert_eq(r.n_outputs, 1);
    cr_assert_eq(r.outputs[0].binary, -1);
    kserve_request_free(&r);
}

Test(kserve, binary_tensors_follow_the_json_header_in_order)
{
    const char *hdr = "{\"inputs\":[{\"name\":\"a\",\"shape\":[2],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"b\",\"shape\":[1],"
                      "\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":8}}],"
                      "\"parameters\":{\"binary_data_output\":true}}";
    size_t hl = strlen(hdr);
    char body[512];
    memcpy(body, hdr, hl);
    float a[2] = {1.5f, -2};
    int64_t b = -7;
    memcpy(body + hl, a, 8);
    memcpy(body + hl + 8, &b, 8);
    kserve_request r;
    char err[KSERVE_ERRLEN];
    cr_assert_eq(kserve_request_parse(&r, body, hl + 16, hl, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert(r.binary_output);
    cr_assert(r.inputs[0].binary && !r.inputs[0].owned);
    float got[2];
    memcpy(got, r.inputs[0].data, 8);
    cr_assert_eq(got[0], 1.5f);
    int64_t gb;
    memcpy(&gb, r.inputs[1].data, 8);
    cr_assert_eq(gb, -7);
    kserve_request_free(&r);
    /* truncated: one byte short */
    cr_assert_eq(kserve_request_parse(&r, body, hl + 15, hl, NULL, err, sizeof(err)), 400);
    cr_assert(strstr(err, "input 'b': binary data truncated") != NULL, "%s", err);
    /* extra bytes nobody claimed */
    cr_assert_eq(kserve_request_parse(&r, body, hl + 16, hl - 0, NULL, err, sizeof(err)), 0);
    kserve_request_free(&r);
    body[hl + 16] = 'x';
    cr_assert_eq(kserve_request_parse(&r, body, hl + 17, hl, NULL, err, sizeof(err)), 400);
    cr_assert(strstr(err, "not claimed") != NULL, "%s", err);
    /* header length past the body */
    cr_assert_eq(kserve_request_parse(&r, body, 10, 11, NULL, err, sizeof(err)), 400);
    cr_assert(strstr(err, "Inference-Header-Content-Length") != NULL, "%s", err);
}

Test(kserve, every_malformed_request_is_400_naming_the_problem)
{
    struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,\"a\"]}]}",
         "element 1 is a string other than \"NaN\""},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"INT32\",\"data\":[1,\"1\"]}]}",
         "element 1 is not a number"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[NaN]}]}",
         "element 0 is not an integer in range"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[-1e999]}]}",
         "element 0 (-1e999) is out of range for FP64"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[nan]}]}",
         "invalid JSON"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
         "shape has 3 elements but data has 2"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FLOAT\",\"data\":[1]}]}",
         "unknown datatype 'FLOAT'"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[-1],\"datatype\":\"FP32\",\"data\":[1]}]}",
         "non-negative integers"},
        {"{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", "no 'name'"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1]}]}", "no 'shape'"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}]}", "no 'data'"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[300]}]}",
         "not an integer in range"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1e39]}]}",
         "element 0 (1e39) is out of range for FP32 (largest 3.40282347e+38)"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[1]}]}",
         "not a boolean"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP16\",\"data\":[1]}]}",
         "FP16 data must be sent as binary"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[{}]}]}",
         "data holds an object"},
        {"{\"inputs\":[]}", "'inputs' is empty"},
        {"[1]", "must be a JSON object"},
        {"{\"inputs\":[1,}", "invalid JSON"},
        {"{\"id\":5,\"inputs\":[]}", "'id' must be a string"},
        {"{\"parameters\":{\"timeout\":-1},\"inputs\":[]}", "'timeout' must be"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
         "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":1}}]}",
         "'binary_data' must be a boolean"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
         "\"parameters\":{\"binary_data_size\":4}}]}",
         "both 'data' and binary_data_size"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kserve_request r;
        char err[KSERVE_ERRLEN] = "";
        cr_assert_eq(parse(&r, cases[i].json, err), 400, "case %zu: %s", i, err);
        cr_assert(strstr(err, cases[i].needle) != NULL, "case %zu: got '%s'", i, err);
    }
}

Test(kserve, tensors_over_the_byte_limit_are_413_before_allocation)
{
    kserve_request r;
    char err[KSERVE_ERRLEN];
    kserve_limits lim = {.max_tensor_bytes = 1024};
    const char *j = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1000000,1000000,1000000],"
                    "\"datatype\":\"FP32\",\"data\":[1]}]}";
    cr_assert_eq(kserve_request_parse(&r, j, strlen(j), (size_t)-1, &lim, err, sizeof(err)), 413);
    cr_assert(strstr(err, "1024-byte limit") != NULL, "%s", err);
    const char *k =
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[257],\"datatype\":\"FP32\",\"data\":[1]}]}";
    cr_assert_eq(kserve_request_parse(&r, k, strlen(k), (size_t)-1, &lim, err, sizeof(err)), 413);
    /* overflow of the element product itself */
    const char *o = "{\"inputs\":[{\"name\":\"x\",\"shape\":[4294967296,4294967296,16],"
                    "\"datatype\":\"FP32\",\"data\":[1]}]}";
    cr_assert_eq(kserve_request_parse(&r, o, strlen(o), (size_t)-1, NULL, err, sizeof(err)), 413);
}

static const kserve_io model_in[] = {{"input", KSERVE_FP32, 2, {-1, 3}}};
static const kserve_io model_out[] = {{"logits", KSERVE_FP32, 2, {-1, 2}},
                                      {"prob", KSERVE_FP32, 2, {-1, 2}}};

static int check(const char *json, char *err)
{
    kserve_request r;
    int rc = parse(&r, json, err);
    if (!rc) rc = kserve_request_check(&r, model_in, 1, model_out, 2, err, KSERVE_ERRLEN);
    kserve_request_free(&r);
    return rc;
}

Test(kserve, check_names_the_wrong_input_dtype_shape_and_output)
{
    char err[KSERVE_ERRLEN];
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3,4,5,6]}]}",
                       err),
                 0, "%s", err);
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"img\",\"shape\":[1,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3]}]}",
                       err),
                 400);
    cr_assert(strstr(err, "unknown input 'img'") != NULL, "%s", err);
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"INT64\","
                       "\"data\":[1,2,3]}]}",
                       err),
                 400);
    cr_assert(strstr(err, "datatype INT64, but the model expects FP32") != NULL, "%s", err);
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3,4]}]}",
                       err),
                 400);
    cr_assert(strstr(err, "shape [1,4], but the model expects [-1,3]") != NULL, "%s", err);
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3]}],\"outputs\":[{\"name\":\"nope\"}]}",
                       err),
                 400);
    cr_assert(strstr(err, "unknown output 'nope'") != NULL, "%s", err);
    cr_assert_eq(check("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3]},{\"name\":\"input\",\"shape\":[1,3],\"datatype\":"
                       "\"FP32\",\"data\":[1,2,3]}]}",
                       err),
                 400);
    cr_assert(strstr(err, "given twice") != NULL, "%s", err);
}

Test(kserve, response_echoes_id_and_honours_requested_binary_outputs)
{
    kserve_request r;
    char err[KSERVE_ERRLEN];
    const char *j = "{\"id\":\"q\\\"1\",\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],"
                    "\"datatype\":\"FP32\",\"data\":[1,2,3]}],"
                    "\"outputs\":[{\"name\":\"prob\",\"parameters\":{\"binary_data\":true}},"
                    "{\"name\":\"logits\"}]}";
    cr_assert_eq(parse(&r, j, err), 0, "%s", err);
    float logits[2] = {0.25f, -1}, prob[2] = {0.75f, 0.125f};
    int64_t shape[2] = {1, 2};
    kserve_result res[2] = {{"logits", KSERVE_FP32, 2, shape, logits, 2, NULL, 0},
                            {"prob", KSERVE_FP32, 2, shape, prob, 2, NULL, 0}};
    buf b = BUF_INIT;
    size_t jl = 0;
    cr_assert_eq(kserve_response_write(&b, &jl, "m", &r, res, 2), 0);
    cr_assert_eq(b.len, jl + 8);
    char *json = strndup(b.data, jl);
    cr_assert_str_eq(json, "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"q\\\"1\","
                           "\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[1,2],"
                           "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"logits\","
                           "\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[0.25,-1]}]}");
    cr_assert_eq(memcmp(b.data + jl, prob, 8), 0);
    free(json);
    /* no outputs named: all of them, JSON, no binary part */
    r.n_outputs = 0;
    buf_reset(&b);
    cr_assert_eq(kserve_response_write(&b, &jl, "m", &r, res, 2), 0);
    cr_assert_eq(jl, 0);
    cr_assert(strstr(b.data, "\"data\":[0.75,0.125]") != NULL, "%s", b.data);
    buf_free(&b);
    kserve_request_free(&r);
}

Test(kserve, errors_and_metadata_are_well_formed_json)
{
    buf b = BUF_INIT;
    kserve_error_write(&b, "bad \"x\"");
    cr_assert_str_eq(b.data, "{\"error\":\"bad \\\"x\\\"\"}");
    buf_reset(&b);
    kserve_metadata_write(&b, "m", model_in, 1, model_out, 1);
    cr_assert_str_eq(b.data, "{\"name\":\"m\",\"versions\":[\"1\"],\"platform\":\"onnx_onnxv1\","
                             "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1,"
                             "3]}],\"outputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
                             "\"shape\":[-1,2]}]}");
    buf_free(&b);
}

Test(kserve, classification_returns_top_k_score_index_label_strings)
{
    kserve_request r;
    char err[KSERVE_ERRLEN];
    const char *j = "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
                    "\"data\":[1,2,3,4,5,6]}],\"outputs\":[{\"name\":\"logits\",\"parameters\":"
                    "{\"classification\":2}},{\"name\":\"prob\",\"parameters\":"
                    "{\"classification\":5,\"binary_data\":true}}]}";
    cr_assert_eq(parse(&r, j, err), 0, "%s", err);
    cr_assert_eq(r.outputs[0].classification, 2);
    float logits[6] = {0.5f, 2, -1, 0, 0, 7}, prob[6] = {0.1f, 0.7f, 0.2f, 0.3f, 0.3f, 0.4f};
    int64_t shape[2] = {2, 3};
    const char *labels[] = {"cat", "dog"}; /* fewer labels than classes: index only for 2 */
    kserve_result res[2] = {{"logits", KSERVE_FP32, 2, shape, logits, 6, labels, 2},
                            {"prob", KSERVE_FP32, 2, shape, prob, 6, labels, 2}};
    buf b = BUF_INIT;
    size_t jl = 0;
    cr_assert_eq(kserve_response_write(&b, &jl, "m", &r, res, 2), 0);
    char *json = strndup(b.data, jl);
    cr_assert_str_eq(json,
                     "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":[{\"name\":"
                     "\"logits\",\"datatype\":\"BYTES\",\"shape\":[2,2],\"data\":[\"2:1:dog\","
                     "\"0.5:0:cat\",\"7:2\",\"0:0:cat\"]},{\"name\":\"prob\",\"datatype\":"
                     "\"BYTES\",\"shape\":[2,3],\"parameters\":{\"binary_data_size\":118}}]}");
    /* binary: k capped at the 3 classes, each string length-prefixed (little-endian) */
    const unsigned char *p = (const unsigned char *)b.data + jl;
    cr_assert_eq(b.len - jl, 118); /* 2 rows x (17 + 13 + 17 + 3 x 4) */
    cr_assert_eq(p[0], 17);
    cr_assert_eq(memcmp(p + 4, "0.699999988:1:dog", 17), 0);
    cr_assert_eq(p[21], 13);
    cr_assert_eq(memcmp(p + 25, "0.200000003:2", 13), 0);
    cr_assert_eq(memcmp(p + 59 + 4, "0.400000006:2", 13), 0);
    free(json);
    buf_free(&b);
    kserve_request_free(&r);
    /* bad values, and classes of a non-numeric output */
    cr_assert_eq(parse(&r,
                       "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3]}],\"outputs\":[{\"name\":\"logits\",\"parameters\":"
                       "{\"classification\":\"3\"}}]}",
                       err),
                 400);
    cr_assert(strstr(err, "'classification' must be an integer") != NULL, "%s", err);
    /* non-finite scores keep the NaN/Infinity spelling; NaN ranks last */
    cr_assert_eq(parse(&r,
                       "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\","
                       "\"data\":[1,2,3]}],\"outputs\":[{\"name\":\"logits\",\"parameters\":"
                       "{\"classification\":3}}]}",
                       err),
                 0, "%s", err);
    float odd[3] = {NAN, -INFINITY, INFINITY};
    int64_t shape1[2] = {1, 3};
    kserve_result one = {"logits", KSERVE_FP32, 2, shape1, odd, 3, NULL, 0};
    buf_reset(&b);
    cr_assert_eq(kserve_response_write(&b, &jl, "m", &r, &one, 1), 0);
    cr_assert(strstr(b.data, "[\"Infinity:2\",\"-Infinity:1\",\"NaN:0\"]") != NULL, "%s", b.data);
    buf_free(&b);
    kserve_request_free(&r);
}

Test(kserve, nan_and_infinity_are_floats_in_json_as_strings_or_literals_and_written_as_strings)
{
    kserve_request r;
    char err[KSERVE_ERRLEN] = "";
    const char *j = "{\"inputs\":[{\"name\":\"x\",\"shape\":[9],\"datatype\":\"FP32\","
                    "\"data\":[NaN,Infinity,-Infinity,\"NaN\",\"Infinity\",\"-Infinity\",\"inf\","
                    "\"-INF\",1e-50]},{\"name\":\"d\",\"shape\":[2],\"datatype\":\"FP64\","
                    "\"data\":[\"nan\",-Infinity]}]}";
    cr_assert_eq(parse(&r, j, err), 0, "%s", err);
    const float *x = r.inputs[0].data;
    cr_assert(isnan(x[0]) && isnan(x[3]));
    cr_assert(x[1] == INFINITY && x[4] == INFINITY && x[6] == INFINITY);
    cr_assert(x[2] == -INFINITY && x[5] == -INFINITY && x[7] == -INFINITY);
    cr_assert(x[8] == 0, "an underflowing decimal rounds to zero");
    double d[2];
    memcpy(d, r.inputs[1].data, 16);
    cr_assert(isnan(d[0]) && d[1] == -INFINITY);
    int64_t shape[1] = {9};
    kserve_result res = {"x", KSERVE_FP32, 1, shape, x, 9, NULL, 0};
    r.n_outputs = 0;
    buf b = BUF_INIT;
    size_t jl;
    cr_assert_eq(kserve_response_write(&b, &jl, "m", &r, &res, 1), 0);
    cr_assert(strstr(b.data, "\"data\":[\"NaN\",\"Infinity\",\"-Infinity\",\"NaN\",\"Infinity\","
                             "\"-Infinity\",\"Infinity\",\"-Infinity\",0]") != NULL,
              "%s", b.data);
    buf_free(&b);
    kserve_request_free(&r);
}

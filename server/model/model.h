/*
 * app_model: serves ONNX models natively (no Python) over the Open Inference
 * Protocol (KServe v2 REST), image classification and the article's
 * "forward pass on zeros" endpoint, with per-worker dynamic batching.
 * Options and endpoints: docs/serving.md. Internals: server/model/app_int.h.
 */
#ifndef SERVER_MODEL_MODEL_H
#define SERVER_MODEL_MODEL_H

#include "server/app.h"

extern const app_kind app_kind_model;

#endif

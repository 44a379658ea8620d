/* ops_ext: the ops added for model families beyond CNN classifiers
 * (transformers, detectors, segmenters, RNNs, classic ML), in the same X-macro
 * form as EG_OPS in graph.h, which appends them. Kernels: ref_elem.c,
 * ref_reduce.c, ref_index.c, ref_resize.c, ref_loss.c, ref_rnn.c, ref_ml.c;
 * the op table is in ops_ext.c. "aiinfer:" ops are made by graph passes only
 * (the loader refuses that domain): ref_attn.c. */
#ifndef ENGINE_OPS_EXT_H
#define ENGINE_OPS_EXT_H

#define EG_OPS_EXT(X)                                                                              \
    X("Exp", EXP, 1)                                                                               \
    X("Log", LOG, 1)                                                                               \
    X("Neg", NEG, 1)                                                                               \
    X("Sqrt", SQRT, 1)                                                                             \
    X("Reciprocal", RECIPROCAL, 1)                                                                 \
    X("Abs", ABS, 1)                                                                               \
    X("Ceil", CEIL, 1)                                                                             \
    X("Floor", FLOOR, 1)                                                                           \
    X("Round", ROUND, 1)                                                                           \
    X("Sign", SIGN, 1)                                                                             \
    X("Tanh", TANH, 1)                                                                             \
    X("Erf", ERF, 1)                                                                               \
    X("Sin", SIN, 1)                                                                               \
    X("Cos", COS, 1)                                                                               \
    X("Tan", TAN, 1)                                                                               \
    X("Asin", ASIN, 1)                                                                             \
    X("Acos", ACOS, 1)                                                                             \
    X("Atan", ATAN, 1)                                                                             \
    X("Sinh", SINH, 1)                                                                             \
    X("Cosh", COSH, 1)                                                                             \
    X("Asinh", ASINH, 1)                                                                           \
    X("Acosh", ACOSH, 1)                                                                           \
    X("Atanh", ATANH, 1)                                                                           \
    X("Softplus", SOFTPLUS, 1)                                                                     \
    X("Softsign", SOFTSIGN, 1)                                                                     \
    X("Elu", ELU, 1)                                                                               \
    X("Selu", SELU, 1)                                                                             \
    X("Celu", CELU, 1)                                                                             \
    X("ThresholdedRelu", THRESHOLDEDRELU, 1)                                                       \
    X("Shrink", SHRINK, 1)                                                                         \
    X("Mish", MISH, 1)                                                                             \
    X("Gelu", GELU, 1)                                                                             \
    X("IsNaN", ISNAN, 1)                                                                           \
    X("IsInf", ISINF, 1)                                                                           \
    X("Not", NOT, 1)                                                                               \
    X("Pow", POW, 2)                                                                               \
    X("Mod", MOD, 2)                                                                               \
    X("PRelu", PRELU, 2)                                                                           \
    X("And", AND, 2)                                                                               \
    X("Or", OR, 2)                                                                                 \
    X("Xor", XOR, 2)                                                                               \
    X("Equal", EQUAL, 2)                                                                           \
    X("Less", LESS, 2)                                                                             \
    X("Greater", GREATER, 2)                                                                       \
    X("LessOrEqual", LESSOREQUAL, 2)                                                               \
    X("GreaterOrEqual", GREATEROREQUAL, 2)                                                         \
    X("Max", MAX, -1)                                                                              \
    X("Min", MIN, -1)                                                                              \
    X("Sum", SUM, -1)                                                                              \
    X("Mean", MEAN, -1)                                                                            \
    X("Where", WHERE, 3)                                                                           \
    X("ReduceSum", REDUCESUM, 1)                                                                   \
    X("ReduceMax", REDUCEMAX, 1)                                                                   \
    X("ReduceMin", REDUCEMIN, 1)                                                                   \
    X("ReduceProd", REDUCEPROD, 1)                                                                 \
    X("ReduceL1", REDUCEL1, 1)                                                                     \
    X("ReduceL2", REDUCEL2, 1)                                                                     \
    X("ReduceLogSum", REDUCELOGSUM, 1)                                                             \
    X("ReduceLogSumExp", REDUCELOGSUMEXP, 1)                                                       \
    X("ReduceSumSquare", REDUCESUMSQUARE, 1)                                                       \
    X("ArgMax", ARGMAX, 1)                                                                         \
    X("ArgMin", ARGMIN, 1)                                                                         \
    X("LogSoftmax", LOGSOFTMAX, 1)                                                                 \
    X("Hardmax", HARDMAX, 1)                                                                       \
    X("LayerNormalization", LAYERNORM, 2)                                                          \
    X("InstanceNormalization", INSTNORM, 3)                                                        \
    X("MeanVarianceNormalization", MVN, 1)                                                         \
    X("LRN", LRN, 1)                                                                               \
    X("CumSum", CUMSUM, 2)                                                                         \
    X("GlobalMaxPool", GMP, 1)                                                                     \
    X("Size", SIZE, 1)                                                                             \
    X("ConstantOfShape", CONSTANTOFSHAPE, 1)                                                       \
    X("EyeLike", EYELIKE, 1)                                                                       \
    X("Range", RANGE, 3)                                                                           \
    X("Expand", EXPAND, 2)                                                                         \
    X("Tile", TILE, 2)                                                                             \
    X("Trilu", TRILU, 1)                                                                           \
    X("GatherElements", GATHERELEMENTS, 2)                                                         \
    X("ScatterElements", SCATTERELEMENTS, 3)                                                       \
    X("Scatter", SCATTER, 3)                                                                       \
    X("GatherND", GATHERND, 2)                                                                     \
    X("ScatterND", SCATTERND, 3)                                                                   \
    X("OneHot", ONEHOT, 3)                                                                         \
    X("TopK", TOPK, 1)                                                                             \
    X("Pad", PAD, 1)                                                                               \
    X("DepthToSpace", DEPTHTOSPACE, 1)                                                             \
    X("SpaceToDepth", SPACETODEPTH, 1)                                                             \
    X("ReverseSequence", REVERSESEQUENCE, 2)                                                       \
    X("Compress", COMPRESS, 2)                                                                     \
    X("NonZero", NONZERO, 1)                                                                       \
    X("Det", DET, 1)                                                                               \
    X("NegativeLogLikelihoodLoss", NLLLOSS, 2)                                                     \
    X("SoftmaxCrossEntropyLoss", SCELOSS, 2)                                                       \
    X("Resize", RESIZE, 1)                                                                         \
    X("Upsample", UPSAMPLE, 1)                                                                     \
    X("ConvTranspose", CONVTRANSPOSE, 2)                                                           \
    X("RNN", RNN, 3)                                                                               \
    X("GRU", GRU, 3)                                                                               \
    X("LSTM", LSTM, 3)                                                                             \
    X("NonMaxSuppression", NMS, 2)                                                                 \
    X("GridSample", GRIDSAMPLE, 2)                                                                 \
    X("HannWindow", HANNWINDOW, 1)                                                                 \
    X("HammingWindow", HAMMINGWINDOW, 1)                                                           \
    X("BlackmanWindow", BLACKMANWINDOW, 1)                                                         \
    X("Unique", UNIQUE, 1)                                                                         \
    X("MaxUnpool", MAXUNPOOL, 2)                                                                   \
    X("CastLike", CASTLIKE, 2)                                                                     \
    X("Einsum", EINSUM, -1)                                                                        \
    X("RoiAlign", ROIALIGN, 3)                                                                     \
    X("TfIdfVectorizer", TFIDF, 1)                                                                 \
    X("ai.onnx.ml:LinearClassifier", ML_LINEARCLASSIFIER, 1)                                       \
    X("ai.onnx.ml:LinearRegressor", ML_LINEARREGRESSOR, 1)                                         \
    X("ai.onnx.ml:TreeEnsembleClassifier", ML_TREECLASSIFIER, 1)                                   \
    X("ai.onnx.ml:TreeEnsembleRegressor", ML_TREEREGRESSOR, 1)                                     \
    X("ai.onnx.ml:SVMClassifier", ML_SVMCLASSIFIER, 1)                                             \
    X("ai.onnx.ml:SVMRegressor", ML_SVMREGRESSOR, 1)                                               \
    X("ai.onnx.ml:Scaler", ML_SCALER, 1)                                                           \
    X("ai.onnx.ml:Normalizer", ML_NORMALIZER, 1)                                                   \
    X("ai.onnx.ml:Binarizer", ML_BINARIZER, 1)                                                     \
    X("ai.onnx.ml:Imputer", ML_IMPUTER, 1)                                                         \
    X("ai.onnx.ml:OneHotEncoder", ML_ONEHOTENCODER, 1)                                             \
    X("ai.onnx.ml:LabelEncoder", ML_LABELENCODER, 1)                                               \
    X("ai.onnx.ml:ArrayFeatureExtractor", ML_AFE, 2)                                               \
    X("aiinfer:FusedAttention", ATTENTION, 3)

#endif

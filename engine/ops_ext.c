/* ops_ext: the kernel table of the ops in ops_ext.h; ek_op_get falls back to it. */
#include "engine/kernels.h"

extern const ek_op ek_op_math, ek_op_nary, ek_op_reduce, ek_op_arg, ek_op_softmaxlike,
    ek_op_layernorm, ek_op_instnorm, ek_op_mvn, ek_op_lrn, ek_op_cumsum, ek_op_gmp;
extern const ek_op ek_op_size, ek_op_cos, ek_op_eyelike, ek_op_range, ek_op_expand, ek_op_tile,
    ek_op_trilu, ek_op_gather_el, ek_op_scatter_el, ek_op_gather_nd, ek_op_scatter_nd, ek_op_onehot,
    ek_op_topk, ek_op_pad, ek_op_d2s, ek_op_revseq, ek_op_compress, ek_op_nonzero, ek_op_det,
    ek_op_loss, ek_op_resize, ek_op_convt, ek_op_rnn, ek_op_nms, ek_op_grid;
extern const ek_op ek_op_ml_linear, ek_op_ml_featwise, ek_op_ml_ohe, ek_op_ml_labelenc,
    ek_op_ml_afe, ek_op_ml_tree, ek_op_ml_svm, ek_op_window, ek_op_unique, ek_op_unpool,
    ek_op_castlike, ek_op_einsum, ek_op_roialign, ek_op_tfidf, ek_op_attention;

const ek_op *ek_op_get_ext(eg_op op)
{
    switch (op) {
    case EG_OP_EXP:
    case EG_OP_LOG:
    case EG_OP_NEG:
    case EG_OP_SQRT:
    case EG_OP_RECIPROCAL:
    case EG_OP_ABS:
    case EG_OP_CEIL:
    case EG_OP_FLOOR:
    case EG_OP_ROUND:
    case EG_OP_SIGN:
    case EG_OP_TANH:
    case EG_OP_ERF:
    case EG_OP_SIN:
    case EG_OP_COS:
    case EG_OP_TAN:
    case EG_OP_ASIN:
    case EG_OP_ACOS:
    case EG_OP_ATAN:
    case EG_OP_SINH:
    case EG_OP_COSH:
    case EG_OP_ASINH:
    case EG_OP_ACOSH:
    case EG_OP_ATANH:
    case EG_OP_SOFTPLUS:
    case EG_OP_SOFTSIGN:
    case EG_OP_ELU:
    case EG_OP_SELU:
    case EG_OP_CELU:
    case EG_OP_THRESHOLDEDRELU:
    case EG_OP_SHRINK:
    case EG_OP_MISH:
    case EG_OP_GELU:
    case EG_OP_ISNAN:
    case EG_OP_ISINF:
    case EG_OP_NOT: return &ek_op_math;
    case EG_OP_POW:
    case EG_OP_MOD:
    case EG_OP_PRELU:
    case EG_OP_AND:
    case EG_OP_OR:
    case EG_OP_XOR:
    case EG_OP_EQUAL:
    case EG_OP_LESS:
    case EG_OP_GREATER:
    case EG_OP_LESSOREQUAL:
    case EG_OP_GREATEROREQUAL:
    case EG_OP_MAX:
    case EG_OP_MIN:
    case EG_OP_SUM:
    case EG_OP_MEAN:
    case EG_OP_WHERE: return &ek_op_nary;
    case EG_OP_REDUCESUM:
    case EG_OP_REDUCEMAX:
    case EG_OP_REDUCEMIN:
    case EG_OP_REDUCEPROD:
    case EG_OP_REDUCEL1:
    case EG_OP_REDUCEL2:
    case EG_OP_REDUCELOGSUM:
    case EG_OP_REDUCELOGSUMEXP:
    case EG_OP_REDUCESUMSQUARE: return &ek_op_reduce;
    case EG_OP_ARGMAX:
    case EG_OP_ARGMIN: return &ek_op_arg;
    case EG_OP_LOGSOFTMAX:
    case EG_OP_HARDMAX: return &ek_op_softmaxlike;
    case EG_OP_LAYERNORM: return &ek_op_layernorm;
    case EG_OP_INSTNORM: return &ek_op_instnorm;
    case EG_OP_MVN: return &ek_op_mvn;
    case EG_OP_LRN: return &ek_op_lrn;
    case EG_OP_CUMSUM: return &ek_op_cumsum;
    case EG_OP_GMP: return &ek_op_gmp;
    case EG_OP_SIZE: return &ek_op_size;
    case EG_OP_CONSTANTOFSHAPE: return &ek_op_cos;
    case EG_OP_EYELIKE: return &ek_op_eyelike;
    case EG_OP_RANGE: return &ek_op_range;
    case EG_OP_EXPAND: return &ek_op_expand;
    case EG_OP_TILE: return &ek_op_tile;
    case EG_OP_TRILU: return &ek_op_trilu;
    case EG_OP_GATHERELEMENTS: return &ek_op_gather_el;
    case EG_OP_SCATTERELEMENTS:
    case EG_OP_SCATTER: return &ek_op_scatter_el;
    case EG_OP_GATHERND: return &ek_op_gather_nd;
    case EG_OP_SCATTERND: return &ek_op_scatter_nd;
    case EG_OP_ONEHOT: return &ek_op_onehot;
    case EG_OP_TOPK: return &ek_op_topk;
    case EG_OP_PAD: return &ek_op_pad;
    case EG_OP_DEPTHTOSPACE:
    case EG_OP_SPACETODEPTH: return &ek_op_d2s;
    case EG_OP_REVERSESEQUENCE: return &ek_op_revseq;
    case EG_OP_COMPRESS: return &ek_op_compress;
    case EG_OP_NONZERO: return &ek_op_nonzero;
    case EG_OP_DET: return &ek_op_det;
    case EG_OP_NLLLOSS:
    case EG_OP_SCELOSS: return &ek_op_loss;
    case EG_OP_RESIZE:
    case EG_OP_UPSAMPLE: return &ek_op_resize;
    case EG_OP_CONVTRANSPOSE: return &ek_op_convt;
    case EG_OP_RNN:
    case EG_OP_GRU:
    case EG_OP_LSTM: return &ek_op_rnn;
    case EG_OP_NMS: return &ek_op_nms;
    case EG_OP_GRIDSAMPLE: return &ek_op_grid;
    case EG_OP_ML_LINEARCLASSIFIER:
    case EG_OP_ML_LINEARREGRESSOR: return &ek_op_ml_linear;
    case EG_OP_ML_TREECLASSIFIER:
    case EG_OP_ML_TREEREGRESSOR: return &ek_op_ml_tree;
    case EG_OP_ML_SVMCLASSIFIER:
    case EG_OP_ML_SVMREGRESSOR: return &ek_op_ml_svm;
    case EG_OP_ML_SCALER:
    case EG_OP_ML_NORMALIZER:
    case EG_OP_ML_BINARIZER:
    case EG_OP_ML_IMPUTER: return &ek_op_ml_featwise;
    case EG_OP_ML_ONEHOTENCODER: return &ek_op_ml_ohe;
    case EG_OP_ML_LABELENCODER: return &ek_op_ml_labelenc;
    case EG_OP_ML_AFE: return &ek_op_ml_afe;
    case EG_OP_HANNWINDOW:
    case EG_OP_HAMMINGWINDOW:
    case EG_OP_BLACKMANWINDOW: return &ek_op_window;
    case EG_OP_UNIQUE: return &ek_op_unique;
    case EG_OP_MAXUNPOOL: return &ek_op_unpool;
    case EG_OP_CASTLIKE: return &ek_op_castlike;
    case EG_OP_EINSUM: return &ek_op_einsum;
    case EG_OP_ROIALIGN: return &ek_op_roialign;
    case EG_OP_TFIDF: return &ek_op_tfidf;
    case EG_OP_ATTENTION: return &ek_op_attention;
    default: return NULL;
    }
}

/* ops_ext: the kernel table of the ops in ops_ext.h; ek_op_get falls back to it. */
#include "engine/kernels.h"

extern const ek_op ek_op_math, ek_op_nary, ek_op_reduce, ek_op_arg, ek_op_softmaxlike,
    ek_op_layernorm, ek_op_instnorm, ek_op_mvn, ek_op_lrn, ek_op_cumsum, ek_op_gmp;

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
    default: return NULL;
    }
}

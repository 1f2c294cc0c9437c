#include "sk_op.h"

const sk_op_def sk_ops_reduce[] = {
    { NULL, NULL, 0, NULL },
};

#include "sk_op.h"

const sk_op_def sk_ops_control[] = {
    { NULL, NULL, 0, NULL },
};

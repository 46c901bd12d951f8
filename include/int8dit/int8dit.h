// int8dit: native INT8 (W8A8) inference kernels for diffusion transformers. Umbrella header.
#pragma once

#include "int8dit/attention.h"
#include "int8dit/check.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "int8dit/residual.h"
#include "int8dit/status.h"
#include "int8dit/types.h"
#include "int8dit/tune.h"

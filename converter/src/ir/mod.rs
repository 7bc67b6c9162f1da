//! kiln's graph IR: what the quantizer, the pruner and the writer work on.
//!
//! Activations of rank 4 are **NHWC** (the runtime's layout), so an ONNX
//! tensor `[N, C, H, W]` is an IR tensor `[N, H, W, C]`; tensors of any other
//! rank keep ONNX's axis order. Weights live inside their op, already in the
//! layout the op documents. Nodes are in topological order.

pub mod cost;
pub mod eval;
pub mod layout;
mod shape;

pub use shape::{infer_shapes, output_shape as shape_of};

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// An activation tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// IR shape (NHWC for rank 4).
    pub shape: Vec<usize>,
    /// The ONNX tensor holding the same values (in NCHW order for rank 4),
    /// if there is one: the reference and calibration read it from tract.
    /// Tensors that lowering adds (layout transposes) have none.
    pub onnx_name: Option<String>,
}

/// A graph of ops on f32 activations.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All tensors; some may be dead after passes (see [`Graph::live_tensors`]).
    pub tensors: Vec<Tensor>,
    /// Ops in execution order.
    pub nodes: Vec<Node>,
    /// The graph input (raw, un-normalised data).
    pub input: TensorId,
    /// The graph outputs, in ONNX order.
    pub outputs: Vec<TensorId>,
}

/// One op application.
#[derive(Clone, Debug)]
pub struct Node {
    /// The ONNX node it came from (for messages and reports).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Activation inputs.
    pub inputs: Vec<TensorId>,
    /// Its one output.
    pub output: TensorId,
}

/// Activation fused into a Conv2d or FullyConnected: `clamp(prelu(x))`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FusedActivation {
    /// Per-output-channel slope for negative values (PRelu; LeakyRelu as a
    /// constant slope), none for identity.
    pub alpha: Option<Vec<f32>>,
    /// Clamp range in real units (Relu is `(0, inf)`, Relu6 `(0, 6)`).
    pub clamp: Option<(f32, f32)>,
}

/// Element-wise functions that run in float only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Math {
    /// Square root.
    Sqrt,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// The error function.
    Erf,
    /// `1 / x`.
    Reciprocal,
    /// `x` to a constant power.
    Pow(f32),
}

impl Math {
    /// The function, in f32.
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Math::Sqrt => v.sqrt(),
            Math::Exp => v.exp(),
            Math::Log => v.ln(),
            Math::Erf => libm::erff(v),
            Math::Reciprocal => 1.0 / v,
            Math::Pow(e) => v.powf(e),
        }
    }
}

/// Pooling window geometry, in NHWC terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
}

/// The ops kiln knows. Channel-wise parameters apply to the last IR axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// 2-D convolution, NHWC in and out.
    Conv2d {
        /// `[out][kh][kw][in / groups]`, flattened.
        weights: Vec<f32>,
        /// `[out, kh, kw, in / groups]`.
        weight_shape: [usize; 4],
        /// One per output channel.
        bias: Vec<f32>,
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[dh, dw]`.
        dilation: [usize; 2],
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// Channel groups (depthwise: groups == in == out).
        groups: usize,
        /// Value of the padded border, in input units. 0 except when an input
        /// normalisation `(x - m) * s` was folded into this conv: then it is
        /// `m`, the raw value that the original model's zero padding stood for.
        pad_value: f32,
        /// Fused activation.
        activation: FusedActivation,
    },
    /// `y = W x + b` over the last axis.
    FullyConnected {
        /// `[out][in]`, flattened.
        weights: Vec<f32>,
        /// Output features.
        out_features: usize,
        /// One per output.
        bias: Vec<f32>,
        /// Fused activation.
        activation: FusedActivation,
    },
    /// Per-channel `x * scale + shift` (BatchNorm or an arithmetic op with a
    /// constant); each vector has one value per channel or a single value.
    /// Passes fold it into neighbouring convs where they can.
    ScaleShift {
        /// Multiplier.
        scale: Vec<f32>,
        /// Addend.
        shift: Vec<f32>,
    },
    /// Element-wise sum of two activations (numpy broadcasting).
    Add,
    /// Element-wise difference of two activations (numpy broadcasting).
    Sub,
    /// Element-wise product of two activations (numpy broadcasting).
    Mul,
    /// Element-wise maximum of two activations (numpy broadcasting).
    Max,
    /// Element-wise minimum of two activations (numpy broadcasting).
    Min,
    /// Element-wise quotient of two activations (numpy broadcasting). No
    /// int8 form: it runs in float.
    Div,
    /// Matrix product of two activations of equal rank, 2 to 4, and equal
    /// leading dimensions: `[.., M, K] × [.., K, N]`, in ONNX axis order
    /// (lowering moves rank-4 operands out of NHWC and back). No int8 form.
    MatMul,
    /// An element-wise function with no int8 form.
    Math(Math),
    /// Concatenation along an IR axis.
    Concat {
        /// IR axis.
        axis: usize,
    },
    /// Max pooling (padding never wins).
    MaxPool(Window),
    /// Average pooling.
    AvgPool {
        /// Window.
        window: Window,
        /// Whether padded cells count in the divisor.
        count_include_pad: bool,
    },
    /// Mean over H and W, keeping them as 1.
    GlobalAvgPool,
    /// Per-channel slope for negative values.
    PRelu {
        /// One per channel or one in all.
        slope: Vec<f32>,
    },
    /// `min(max(x, lo), hi)` (Relu, Relu6, Clip).
    Clamp {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// Logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Absolute value.
    Abs,
    /// Negation.
    Neg,
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// `clamp(alpha * x + beta, 0, 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// Row-major reinterpretation of the IR tensor (lowering puts layout
    /// transposes around it so that ONNX's NCHW semantics hold).
    Reshape {
        /// Output shape.
        shape: Vec<usize>,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Constant padding.
    Pad {
        /// `(before, after)` per IR axis.
        pads: Vec<(usize, usize)>,
        /// Padding value.
        value: f32,
    },
    /// Spatial resize of an NHWC tensor.
    Resize {
        /// Output `[h, w]`.
        size: [usize; 2],
        /// ONNX scales along H and W (given, or output / input size): the
        /// coordinate transformation uses them, not the rounded sizes.
        scales: [f32; 2],
        /// Bilinear (`true`) or nearest (`false`).
        linear: bool,
        /// ONNX `coordinate_transformation_mode`, e.g. `asymmetric`.
        coordinate_mode: String,
        /// ONNX `nearest_mode`, e.g. `floor`.
        nearest_mode: String,
    },
    /// Softmax along an IR axis.
    Softmax {
        /// IR axis.
        axis: usize,
    },
    /// Strided slice: along IR axis `a`, output index `i` reads input index
    /// `start[a] + i * step[a]`, for `i < size[a]`.
    Slice {
        /// First input index per IR axis.
        start: Vec<usize>,
        /// Step per IR axis (negative walks backwards).
        step: Vec<i64>,
        /// Output size per IR axis.
        size: Vec<usize>,
    },
    /// Mean or maximum over the last IR axis, keeping it as 1.
    Reduce {
        /// Maximum (`true`) or mean.
        max: bool,
    },
    /// Zero insertion of an NHWC tensor: input pixel `(i, j)` lands at
    /// `(i * stride[0], j * stride[1])` of an `[n, (h-1)*sh+1, (w-1)*sw+1, c]`
    /// output whose other cells are zero. Followed by a [`Op::Conv2d`] with
    /// the kernel flipped, it is a transposed convolution (ONNX
    /// ConvTranspose; see `lower::nn::conv_transpose`).
    ZeroInsert {
        /// `[sh, sw]`.
        stride: [usize; 2],
    },
}

impl Op {
    /// Short name for messages and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "Conv2d",
            Op::FullyConnected { .. } => "FullyConnected",
            Op::ScaleShift { .. } => "ScaleShift",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Max => "Max",
            Op::Min => "Min",
            Op::Div => "Div",
            Op::MatMul => "MatMul",
            Op::Math(Math::Sqrt) => "Sqrt",
            Op::Math(Math::Exp) => "Exp",
            Op::Math(Math::Log) => "Log",
            Op::Math(Math::Erf) => "Erf",
            Op::Math(Math::Reciprocal) => "Reciprocal",
            Op::Math(Math::Pow(_)) => "Pow",
            Op::Concat { .. } => "Concat",
            Op::MaxPool(_) => "MaxPool",
            Op::AvgPool { .. } => "AvgPool",
            Op::GlobalAvgPool => "GlobalAvgPool",
            Op::PRelu { .. } => "PRelu",
            Op::Clamp { .. } => "Clamp",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Abs => "Abs",
            Op::Neg => "Neg",
            Op::HardSwish => "HardSwish",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Pad { .. } => "Pad",
            Op::Resize { .. } => "Resize",
            Op::Softmax { .. } => "Softmax",
            Op::Slice { .. } => "Slice",
            Op::Reduce { max: false } => "ReduceMean",
            Op::Reduce { max: true } => "ReduceMax",
            Op::ZeroInsert { .. } => "ZeroInsert",
        }
    }

    /// The weights (`[out][…]`, one row per output channel) and the bias of
    /// a convolution or fully connected layer.
    pub fn weights_and_bias(&self) -> Option<(&[f32], &[f32])> {
        match self {
            Op::Conv2d { weights, bias, .. } | Op::FullyConnected { weights, bias, .. } => Some((weights, bias)),
            _ => None,
        }
    }

    /// [`Op::weights_and_bias`], to change in place.
    pub fn weights_and_bias_mut(&mut self) -> Option<(&mut [f32], &mut [f32])> {
        match self {
            Op::Conv2d { weights, bias, .. } | Op::FullyConnected { weights, bias, .. } => Some((weights, bias)),
            _ => None,
        }
    }

    /// The first weight, bias, scale or slope of the op that is NaN or
    /// infinite, as (which, index, value); or a clamp bound that is NaN (an
    /// infinite one means no bound).
    pub fn non_finite_parameter(&self) -> Option<(&'static str, usize, f32)> {
        let arrays: &[(&'static str, &[f32])] = match self {
            Op::Conv2d { weights, bias, .. } | Op::FullyConnected { weights, bias, .. } => {
                &[("weight", weights), ("bias", bias)]
            }
            Op::ScaleShift { scale, shift } => &[("scale", scale), ("shift", shift)],
            Op::PRelu { slope } => &[("slope", slope)],
            Op::Clamp { lo, hi } => return [*lo, *hi].iter().position(|v| v.is_nan()).map(|i| ("bound", i, f32::NAN)),
            _ => &[],
        };
        arrays
            .iter()
            .find_map(|(what, values)| values.iter().position(|v| !v.is_finite()).map(|i| (*what, i, values[i])))
    }

    /// The function of an op that squashes its input monotonically into a
    /// bounded range (Sigmoid, Tanh, HardSigmoid), element by element.
    pub fn squashing(&self) -> Option<Box<dyn Fn(f32) -> f32 + '_>> {
        match self {
            Op::Sigmoid => Some(Box::new(|v: f32| 1.0 / (1.0 + (-v).exp()))),
            Op::Tanh => Some(Box::new(f32::tanh)),
            Op::HardSigmoid { alpha, beta } => Some(Box::new(move |v: f32| (alpha * v + beta).clamp(0.0, 1.0))),
            _ => None,
        }
    }

    /// Whether the op has no int8 form and always runs in float.
    pub fn float_only(&self) -> bool {
        matches!(self, Op::Div | Op::MatMul | Op::Math(_))
    }

    /// Whether the op only moves values (so its output range is its
    /// input's; zero insertion adds zeros, which every range covers).
    pub fn moves_data_only(&self) -> bool {
        matches!(self, Op::Reshape { .. } | Op::Transpose { .. } | Op::Slice { .. } | Op::ZeroInsert { .. })
    }
}

/// Permutation from an ONNX NCHW tensor to its IR NHWC form: IR axis `i` is
/// ONNX axis `NCHW_TO_NHWC[i]`.
pub const NCHW_TO_NHWC: [usize; 4] = [0, 2, 3, 1];
/// Inverse of [`NCHW_TO_NHWC`]: ONNX axis `a` is IR axis `NHWC_TO_NCHW[a]`.
pub const NHWC_TO_NCHW: [usize; 4] = [0, 3, 1, 2];

impl Graph {
    /// Adds a tensor and returns its id.
    pub fn add_tensor(&mut self, shape: Vec<usize>, onnx_name: Option<String>) -> TensorId {
        self.tensors.push(Tensor { shape, onnx_name });
        self.tensors.len() - 1
    }

    /// Indices of the nodes that read `t`.
    pub fn consumers(&self, t: TensorId) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&n| self.nodes[n].inputs.contains(&t)).collect()
    }

    /// Whether `t` is read by exactly one node and is not a graph output:
    /// the condition for fusing its producer with that consumer.
    pub fn has_single_use(&self, t: TensorId) -> bool {
        self.consumers(t).len() == 1 && !self.outputs.contains(&t)
    }

    /// Removes node `n` whose output is to be replaced by `by` everywhere.
    pub fn remove_node_replacing_output(&mut self, n: usize, by: TensorId) {
        let old = self.nodes.remove(n).output;
        for node in &mut self.nodes {
            for i in &mut node.inputs {
                if *i == old {
                    *i = by;
                }
            }
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = by;
            }
        }
    }

    /// Fuses node `consumer` into node `producer`, which the caller has
    /// already updated to compute the consumer's result: the producer now
    /// writes the consumer's output tensor (keeping its ONNX name and its
    /// readers) and the consumer disappears. The producer's old output must
    /// have had the consumer as its only reader.
    pub fn absorb(&mut self, producer: usize, consumer: usize) {
        self.nodes[producer].output = self.nodes[consumer].output;
        self.nodes.remove(consumer);
    }

    /// The first node `n` (with its index) for which `pick` finds a fusion
    /// partner, as `(n, partner)`: passes loop on it until nothing is left.
    pub fn find_pair(&self, pick: impl Fn(&Graph, usize) -> Option<usize>) -> Option<(usize, usize)> {
        (0..self.nodes.len()).find_map(|n| pick(self, n).map(|p| (n, p)))
    }

    /// Drops the tensors that passes left dead and renumbers the rest in id
    /// order, so that later stages (calibration, planning, writing) see only
    /// tensors that exist at run time.
    pub fn compact(&mut self) {
        let live = self.live_tensors();
        let mut new_id = vec![usize::MAX; self.tensors.len()];
        for (new, &old) in live.iter().enumerate() {
            new_id[old] = new;
        }
        self.tensors = live.iter().map(|&t| self.tensors[t].clone()).collect();
        for node in &mut self.nodes {
            node.output = new_id[node.output];
            node.inputs.iter_mut().for_each(|i| *i = new_id[*i]);
        }
        self.input = new_id[self.input];
        self.outputs.iter_mut().for_each(|o| *o = new_id[*o]);
    }

    /// Tensors that the graph still reads or writes, in id order.
    pub fn live_tensors(&self) -> Vec<TensorId> {
        let mut live = vec![false; self.tensors.len()];
        live[self.input] = true;
        for n in &self.nodes {
            live[n.output] = true;
        }
        (0..self.tensors.len()).filter(|&t| live[t]).collect()
    }
}

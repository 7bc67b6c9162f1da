//! Channel dependencies: which channels of which tensors must be removed
//! together for the graph to stay well formed and compute the same function
//! of the channels that remain.
//!
//! Every channel (an index on a tensor's last IR axis) is a node of a
//! union-find. Ops that carry channels through one by one unite their input
//! and output channels: activations, BatchNorm-like scale/shift, pooling,
//! resize, depthwise convolutions (input channel = output channel), both
//! operands of a residual `Add`, `Mul`, `Max` or `Min`, the offsets inside
//! a channel `Concat`, a `Slice` that keeps every channel, and a `Reshape` that flattens NHWC (one channel is a block of
//! H×W features of the flat tensor). Convolutions with one group and fully
//! connected layers produce fresh channels and consume whole ones, so they
//! unite nothing: they are where a channel starts and ends. Anything else
//! (grouped convolutions, a softmax over channels, other reshapes, the
//! graph's input and outputs) pins its channels, and a pinned channel's
//! whole class stays.

use std::collections::BTreeMap;

use crate::ir::{Graph, Node, Op, TensorId};

/// One channel: index `index` on the last axis of tensor `tensor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel {
    /// The tensor.
    pub tensor: TensorId,
    /// Index on its last axis.
    pub index: usize,
}

/// Channels that share one structure, e.g. the output channels of one
/// convolution with everything they couple to: each unit is one prunable
/// channel with all the channels that go with it.
#[derive(Clone, Debug)]
pub struct Group {
    /// Display name: the first producing layer's output tensor.
    pub name: String,
    /// The units, each a sorted list of coupled channels.
    pub units: Vec<Vec<Channel>>,
    /// The nodes whose output rows make the units (convolutions with one
    /// group, fully connected layers): where the pruning criteria look.
    pub sources: Vec<usize>,
}

impl Group {
    /// Number of units (the width of the layer).
    pub fn width(&self) -> usize {
        self.units.len()
    }
}

/// The prunable groups of `graph`, in the order of their first producer.
pub fn groups(graph: &Graph) -> Vec<Group> {
    let mut spaces = Spaces::new(graph);
    for node in &graph.nodes {
        spaces.couple(graph, node);
    }
    spaces.pin_tensor(graph.input);
    for &t in &graph.outputs {
        spaces.pin_tensor(t);
    }
    spaces.into_groups(graph)
}

/// Whether `op` makes fresh output channels from whole input channels.
pub fn is_source(op: &Op) -> bool {
    matches!(op, Op::Conv2d { groups: 1, .. } | Op::FullyConnected { .. })
}

/// Whether `op` is a depthwise convolution (one group per channel).
pub fn is_depthwise(op: &Op) -> bool {
    matches!(op, Op::Conv2d { groups, weight_shape: [out, _, _, 1], .. } if groups == out && *groups > 1)
}

/// The union-find over all channels of all tensors.
struct Spaces {
    /// First element of each tensor's channels.
    offset: Vec<usize>,
    parent: Vec<usize>,
    pinned: Vec<bool>,
}

fn width(graph: &Graph, t: TensorId) -> usize {
    graph.tensors[t].shape.last().copied().unwrap_or(1)
}

impl Spaces {
    fn new(graph: &Graph) -> Self {
        let mut offset = Vec::with_capacity(graph.tensors.len() + 1);
        let mut total = 0;
        for t in 0..graph.tensors.len() {
            offset.push(total);
            total += width(graph, t);
        }
        offset.push(total);
        Spaces { offset, parent: (0..total).collect(), pinned: vec![false; total] }
    }

    fn id(&self, c: Channel) -> usize {
        self.offset[c.tensor] + c.index
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: Channel, b: Channel) {
        let (ra, rb) = (self.find(self.id(a)), self.find(self.id(b)));
        self.parent[ra] = rb;
    }

    /// Unites channel `i` of `a` with channel `i` of `b`, for every `i`.
    fn unite_tensors(&mut self, graph: &Graph, a: TensorId, b: TensorId) {
        if width(graph, a) != width(graph, b) {
            self.pin_tensor(a);
            self.pin_tensor(b);
            return;
        }
        for index in 0..width(graph, a) {
            self.union(Channel { tensor: a, index }, Channel { tensor: b, index });
        }
    }

    fn pin_tensor(&mut self, t: TensorId) {
        let range = self.offset[t]..self.offset[t + 1];
        self.pinned[range].iter_mut().for_each(|p| *p = true);
    }

    fn pin_node(&mut self, node: &Node) {
        for &t in node.inputs.iter().chain([&node.output]) {
            self.pin_tensor(t);
        }
    }

    fn couple(&mut self, graph: &Graph, node: &Node) {
        let out = node.output;
        let rank = graph.tensors[out].shape.len();
        match &node.op {
            op if is_source(op) => {}
            op if is_depthwise(op) => self.unite_tensors(graph, node.inputs[0], out),
            Op::Conv2d { .. } => self.pin_node(node),
            Op::ScaleShift { .. }
            | Op::PRelu { .. }
            | Op::Clamp { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Abs
            | Op::Neg
            | Op::HardSwish
            | Op::HardSigmoid { .. }
            | Op::MaxPool(_)
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::Resize { .. }
            | Op::ZeroInsert { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Max
            | Op::Min => {
                for &t in &node.inputs {
                    self.unite_tensors(graph, t, out);
                }
            }
            Op::Pad { pads, .. } if pads.last() == Some(&(0, 0)) => self.unite_tensors(graph, node.inputs[0], out),
            // A slice that keeps every channel in order (the Focus of YOLOX
            // strides over H and W only); one that picks channels pins them.
            Op::Slice { start, step, .. }
                if start.last() == Some(&0)
                    && step.last() == Some(&1)
                    && width(graph, node.inputs[0]) == width(graph, out) =>
            {
                self.unite_tensors(graph, node.inputs[0], out)
            }
            Op::Softmax { axis } if *axis + 1 != rank => self.unite_tensors(graph, node.inputs[0], out),
            Op::Transpose { perm } if perm.last() == Some(&(rank - 1)) => {
                self.unite_tensors(graph, node.inputs[0], out)
            }
            Op::Concat { axis } if *axis + 1 == rank => {
                let mut offset = 0;
                for &t in &node.inputs {
                    for index in 0..width(graph, t) {
                        self.union(Channel { tensor: t, index }, Channel { tensor: out, index: offset + index });
                    }
                    offset += width(graph, t);
                }
            }
            Op::Concat { .. } => {
                for &t in &node.inputs {
                    self.unite_tensors(graph, t, out);
                }
            }
            Op::Reshape { .. } if is_flatten(graph, node.inputs[0], out) => {
                let shape = &graph.tensors[node.inputs[0]].shape;
                let (pixels, c) = (shape[1] * shape[2], shape[3]);
                for index in 0..c {
                    for p in 0..pixels {
                        self.union(
                            Channel { tensor: node.inputs[0], index },
                            Channel { tensor: out, index: p * c + index },
                        );
                    }
                }
            }
            _ => {
                log::debug!("pruning: `{}` ({}) pins its channels", node.name, node.op.name());
                self.pin_node(node)
            }
        }
    }

    fn into_groups(mut self, graph: &Graph) -> Vec<Group> {
        let total = self.parent.len();
        let mut pinned_root = vec![false; total];
        for i in 0..total {
            let r = self.find(i);
            pinned_root[r] |= self.pinned[i];
        }
        let mut classes: BTreeMap<usize, Vec<Channel>> = BTreeMap::new();
        for tensor in 0..graph.tensors.len() {
            for index in 0..width(graph, tensor) {
                let c = Channel { tensor, index };
                let r = self.find(self.id(c));
                if !pinned_root[r] {
                    classes.entry(r).or_default().push(c);
                }
            }
        }
        let producer = producers(graph);
        // Units over the same tensors form one group.
        let mut by_tensors: BTreeMap<Vec<TensorId>, Vec<Vec<Channel>>> = BTreeMap::new();
        for (_, mut unit) in classes {
            unit.sort();
            let mut tensors: Vec<TensorId> = unit.iter().map(|c| c.tensor).collect();
            tensors.dedup();
            by_tensors.entry(tensors).or_default().push(unit);
        }
        let mut groups: Vec<Group> = by_tensors
            .into_iter()
            .filter_map(|(tensors, mut units)| {
                let sources: Vec<usize> =
                    tensors.iter().filter_map(|&t| producer[t]).filter(|&n| is_source(&graph.nodes[n].op)).collect();
                let first = *sources.first()?;
                units.sort_by_key(|u| u[0].index);
                let out = graph.nodes[first].output;
                let name = graph.tensors[out].onnx_name.clone().unwrap_or_else(|| format!("t{out}"));
                Some(Group { name, units, sources })
            })
            .collect();
        groups.sort_by_key(|g| g.sources[0]);
        groups
    }
}

/// `Reshape` of `[N, H, W, C]` into `[N, H·W·C]` (the NHWC flatten that
/// feeds a fully connected layer).
fn is_flatten(graph: &Graph, input: TensorId, output: TensorId) -> bool {
    let (i, o) = (&graph.tensors[input].shape, &graph.tensors[output].shape);
    i.len() == 4 && o.len() == 2 && o[0] == i[0] && o[1] == i[1] * i[2] * i[3]
}

/// The node that writes each tensor (`None` for the graph input).
pub fn producers(graph: &Graph) -> Vec<Option<usize>> {
    let mut producer = vec![None; graph.tensors.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        producer[node.output] = Some(n);
    }
    producer
}

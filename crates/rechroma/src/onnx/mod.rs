//! ONNX export of an MLEU: the network as an ONNX graph (opset 17) that ONNX Runtime, OpenCV DNN or
//! onnxruntime-web run, with the weights inside.
//!
//! - Input `l`: `[N, 1, H, W]`, CIE L in Lab units (0–100), H and W multiples of 32 (dynamic); a model
//!   that takes hints has a second input `hints`: `[N, 3, H, W]` (a/110, b/110, mask; see
//!   [`crate::hints::render`]). The input normalisation (L/100, the backbone's gray sRGB) is inside the
//!   graph.
//! - Outputs: `ab` `[N, 2, H, W]` in Lab units (regression and joint heads), `logits`
//!   `[N, 313, H/s, W/s]` (classification and joint heads; s the class stride, softmax not applied).
//! - Every BatchNorm is folded into its convolution (running statistics: the inference form).
//!
//! The protobuf messages are derived with `prost` ([`proto`]): a well-kept crate, and the handful of
//! messages needs no code generation step.

pub mod proto;

use crate::model::Network;
use crate::model::blocks::{Act, ConvBnAct};
use crate::model::efficientnet::EfficientNet;
use crate::model::mleu::{Head, Mleu};
use crate::quantize::Q;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use proto::*;

/// The opset the graph is written for.
pub const OPSET: i64 = 17;

/// Why a network cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The network is not one the exporter writes.
    #[error("ONNX export writes MLEU networks with an EfficientNet-Lite backbone or none; this is {0}")]
    Unsupported(&'static str),
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().expect("f32 data")
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: 2,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}

fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: 3,
        ..Default::default()
    }
}

/// A graph being written: nodes in order, initialisers, fresh names.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
}

impl Builder {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_{}", self.next)
    }

    /// An f32 initialiser.
    fn constant(&mut self, data: &[f32], dims: &[i64]) -> String {
        let name = self.fresh("c");
        self.inits.push(TensorProto {
            dims: dims.to_vec(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    fn scalar(&mut self, v: f32) -> String {
        self.constant(&[v], &[])
    }

    /// A 1-D int64 initialiser.
    fn ints(&mut self, data: &[i64]) -> String {
        let name = self.fresh("i");
        self.inits.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// One node with one output, named afresh (or `out`).
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>, out: Option<&str>) -> String {
        let output = out.map_or_else(|| self.fresh(&op.to_lowercase()), str::to_string);
        let name = self.fresh("n");
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name,
            op_type: op.into(),
            attribute,
        });
        output
    }

    fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, &[a, b], vec![], None)
    }

    /// A convolution with TensorFlow-style "same" padding (SAME_UPPER: the extra row and column of an
    /// even-sized stride-2 convolution at the bottom and right, as rechroma's layers pad).
    fn conv(
        &mut self,
        x: &str,
        weight: &[f32],
        dims: [usize; 4],
        bias: Option<&[f32]>,
        stride: usize,
        groups: usize,
    ) -> String {
        let w = self.constant(weight, &dims.map(|d| d as i64));
        let mut inputs = vec![x.to_string(), w];
        if let Some(b) = bias {
            inputs.push(self.constant(b, &[dims[0] as i64]));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node(
            "Conv",
            &refs,
            vec![
                attr_str("auto_pad", "SAME_UPPER"),
                attr_ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]),
                attr_ints("strides", &[stride as i64, stride as i64]),
                attr_int("group", groups as i64),
            ],
            None,
        )
    }

    /// A plain convolution of `conv` (its own bias, if any), its weights scaled by `scale`.
    fn conv2d(&mut self, x: &str, conv: &Conv2d, scale: f32) -> String {
        let dims = conv.weight.val().dims();
        let w: Vec<f32> = values(conv.weight.val()).into_iter().map(|v| v * scale).collect();
        let b = conv.bias.as_ref().map(|b| values(b.val()));
        self.conv(x, &w, dims, b.as_deref(), conv.stride[0], conv.groups)
    }

    /// conv → BatchNorm (folded into the convolution, [`ConvBnAct::fold_batchnorm`]) [+ a hint
    /// convolution] → activation.
    fn conv_bn(&mut self, x: &str, block: &ConvBnAct, hint: Option<(&Conv2d, &str, f32)>) -> String {
        let folded = block.clone().fold_batchnorm();
        let mut y = self.conv2d(x, &folded.conv, 1.0);
        if let Some((conv, planes, s)) = hint {
            let h = self.conv2d(planes, conv, s);
            y = self.binary("Add", &y, &h);
        }
        match block.act {
            Act::Relu => self.node("Relu", &[&y], vec![], None),
            Act::Relu6 => {
                let (lo, hi) = (self.scalar(0.0), self.scalar(6.0));
                self.node("Clip", &[&y, &lo, &hi], vec![], None)
            }
            Act::Identity => y,
        }
    }

    /// [`crate::model::gray_srgb`], then EfficientNet-Lite's normalisation, as three channels.
    fn efficientnet_input(&mut self, l: &str) -> String {
        use crate::color::{F_KNEE, KAPPA_SLOPE, SRGB_GAMMA, SRGB_LINEAR_LIMIT, SRGB_OFFSET, SRGB_SCALE, SRGB_SLOPE};
        let c = |b: &mut Self, v: f64| b.scalar(v as f32);
        let (c16, c116) = (c(self, 16.0), c(self, 116.0));
        let fy = self.binary("Add", l, &c16);
        let fy = self.binary("Div", &fy, &c116);
        let three = c(self, 3.0);
        let cube = self.binary("Pow", &fy, &three);
        let off = c(self, 16.0 / 116.0);
        let lin = self.binary("Sub", &fy, &off);
        let k = c(self, KAPPA_SLOPE);
        let lin = self.binary("Div", &lin, &k);
        let knee = c(self, F_KNEE);
        let below = self.binary("LessOrEqual", &fy, &knee);
        let y = self.node("Where", &[&below, &lin, &cube], vec![], None);
        let (zero, one) = (c(self, 0.0), c(self, 1.0));
        let y = self.node("Clip", &[&y, &zero, &one], vec![], None);
        let gamma = c(self, 1.0 / SRGB_GAMMA);
        let p = self.binary("Pow", &y, &gamma);
        let sc = c(self, SRGB_SCALE);
        let p = self.binary("Mul", &p, &sc);
        let so = c(self, SRGB_OFFSET);
        let p = self.binary("Sub", &p, &so);
        let slope = c(self, SRGB_SLOPE);
        let linear = self.binary("Mul", &y, &slope);
        let limit = c(self, SRGB_LINEAR_LIMIT);
        let dark = self.binary("LessOrEqual", &y, &limit);
        let g = self.node("Where", &[&dark, &linear, &p], vec![], None);
        let (mean, scale) = (self.scalar(127.0 / 255.0), self.scalar(128.0 / 255.0));
        let g = self.binary("Sub", &g, &mean);
        let g = self.binary("Div", &g, &scale);
        self.node("Concat", &[&g, &g, &g], vec![attr_int("axis", 1)], None)
    }

    /// [`EfficientNet::features`]: the last map of each resolution.
    fn efficientnet_features(&mut self, net: &EfficientNet, x: &str) -> Vec<String> {
        let mut x = self.conv_bn(x, &net.conv_stem, None);
        let mut out = Vec::new();
        for block in &net.blocks {
            if block.depthwise_conv.conv.stride[0] > 1 {
                out.push(x.clone());
            }
            let h = match &block.expand_conv {
                Some(e) => self.conv_bn(&x, e, None),
                None => x.clone(),
            };
            let h = self.conv_bn(&h, &block.depthwise_conv, None);
            let h = self.conv_bn(&h, &block.project_conv, None);
            x = if block.skip { self.binary("Add", &h, &x) } else { h };
        }
        out.push(x);
        out
    }

    /// [`crate::model::hinted::pooled_hints`].
    fn pooled_hints(&mut self, planes: &str, s: usize) -> String {
        if s == 1 {
            return planes.to_string();
        }
        let slice = |b: &mut Self, from: i64, to: i64| {
            let (st, en, ax) = (b.ints(&[from]), b.ints(&[to]), b.ints(&[1]));
            b.node("Slice", &[planes, &st, &en, &ax], vec![], None)
        };
        let ab = slice(self, 0, 2);
        let mask = slice(self, 2, 3);
        let k = [s as i64, s as i64];
        let pool = |b: &mut Self, op: &str, x: &str| {
            b.node(
                op,
                &[x],
                vec![attr_ints("kernel_shape", &k), attr_ints("strides", &k)],
                None,
            )
        };
        let revealed = pool(self, "AveragePool", &mask);
        let tiny = self.scalar(1e-6);
        let revealed = self.binary("Max", &revealed, &tiny);
        let ab = pool(self, "AveragePool", &ab);
        let ab = self.binary("Div", &ab, &revealed);
        let mask = pool(self, "MaxPool", &mask);
        self.node("Concat", &[&ab, &mask], vec![attr_int("axis", 1)], None)
    }
}

fn value_info(name: &str, dims: Option<[&str; 4]>, fixed: Option<(usize, i64)>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .enumerate()
            .map(|(i, p)| Dimension {
                value: Some(match fixed {
                    Some((at, v)) if at == i => DimensionValue::DimValue(v),
                    _ => DimensionValue::DimParam(p.to_string()),
                }),
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape,
            }),
        }),
    }
}

/// The ONNX model (serialised protobuf) of an MLEU network.
pub fn export_mleu(m: &Mleu) -> Result<Vec<u8>, OnnxError> {
    if m.vgg.is_some() {
        return Err(OnnxError::Unsupported("an MLEU with the VGG16 backbone"));
    }
    let mut g = Builder::default();
    let hints = m.takes_hints().then_some("hints");
    let features = m.backbone.as_ref().map(|net| {
        let x = g.efficientnet_input("l");
        g.efficientnet_features(net, &x)
    });
    let hundred = g.scalar(crate::color::norm::L_RANGE);
    let input = g.binary("Div", "l", &hundred);
    let mut x = input.clone();
    let mut skips = Vec::new();
    for (i, block) in m.encoder.iter().enumerate() {
        let conv = if i == 0 {
            m.hint_in.as_ref()
        } else {
            m.hint_down.get(i - 1)
        };
        let pooled = hints.filter(|_| conv.is_some()).map(|h| g.pooled_hints(h, 1 << i));
        let hint = conv.zip(pooled.as_deref()).map(|(c, p)| (c, p, m.hint_scale));
        let y = g.conv_bn(&x, &block.conv1, hint);
        x = g.conv_bn(&y, &block.conv2, None);
        if let Some(f) = &features {
            let e = g.conv_bn(&f[i], &m.embed[i], None);
            x = g.node("Concat", &[&x, &e], vec![attr_int("axis", 1)], None);
        }
        skips.push(x.clone());
    }
    skips.pop();
    let mut class_features = None;
    let (roi, scales) = (g.constant(&[], &[0]), g.constant(&[1.0, 1.0, 2.0, 2.0], &[4]));
    for (j, block) in m.decoder.iter().enumerate() {
        let up = g.node(
            "Resize",
            &[&x, &roi, &scales],
            vec![
                attr_str("mode", "nearest"),
                attr_str("coordinate_transformation_mode", "asymmetric"),
                attr_str("nearest_mode", "floor"),
            ],
            None,
        );
        let u = g.conv_bn(&up, &block.up_conv, None);
        let skip = if j < 4 { skips[3 - j].clone() } else { input.clone() };
        let cat = g.node("Concat", &[&u, &skip], vec![attr_int("axis", 1)], None);
        let hint = (j == 4)
            .then(|| m.hint_skip.as_ref().zip(hints))
            .flatten()
            .map(|(c, h)| (c, h, m.hint_scale));
        x = g.conv_bn(&cat, &block.fuse_conv, hint);
        if j == 2 && m.class_stride == 4 {
            class_features = Some(x.clone());
        }
    }
    let mut outputs = Vec::new();
    let dims = ["batch", "c", "height", "width"];
    let class_dims = ["batch", "c", "class_height", "class_width"];
    let ab = |g: &mut Builder, x: &str| {
        let y = g.conv2d(x, &m.out, 1.0);
        let t = g.node("Tanh", &[&y], vec![], None);
        let s = g.scalar(crate::color::norm::AB_SIGNED_SCALE);
        g.node("Mul", &[&t, &s], vec![], Some("ab"))
    };
    match m.head {
        Head::Regression => {
            ab(&mut g, &x);
            outputs.push(value_info("ab", Some(dims), Some((1, 2))));
        }
        Head::Classification => {
            let y = g.conv2d(&x, &m.out, 1.0);
            g.node("Identity", &[&y], vec![], Some("logits"));
            outputs.push(value_info("logits", Some(class_dims), Some((1, Q as i64))));
        }
        Head::Joint => {
            ab(&mut g, &x);
            let class_out = m.class_out.as_ref().expect("a joint head has its class conv");
            let y = g.conv2d(class_features.as_deref().unwrap_or(&x), class_out, 1.0);
            g.node("Identity", &[&y], vec![], Some("logits"));
            outputs.push(value_info("ab", Some(dims), Some((1, 2))));
            outputs.push(value_info("logits", Some(class_dims), Some((1, Q as i64))));
        }
    }
    let mut inputs = vec![value_info("l", Some(dims), Some((1, 1)))];
    if hints.is_some() {
        inputs.push(value_info("hints", Some(dims), Some((1, 3))));
    }
    let model = ModelProto {
        ir_version: 8,
        producer_name: "rechroma".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: "MLEU colorizer: L (Lab units, sides multiples of 32) → ab (Lab units) and class logits".into(),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "rechroma_mleu".into(),
            initializer: g.inits,
            input: inputs,
            output: outputs,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(prost::Message::encode_to_vec(&model))
}

/// [`export_mleu`] of a loaded network; ChromaGAN is not exported.
pub fn export(network: &Network) -> Result<Vec<u8>, OnnxError> {
    match network {
        Network::Mleu(m) => export_mleu(m),
        Network::ChromaGan(_) => Err(OnnxError::Unsupported("ChromaGAN (it stays on burn)")),
    }
}

//! ONNX export: rechroma's own network against what ONNX Runtime computed on the exported graph
//! (golden numbers of `scripts/reference/onnx_check.py`), and the graph's structure.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use rechroma::model::Network;
use rechroma::onnx::proto::{GraphProto, ModelProto};

/// The embedded model's network, for the photos the script ran ONNX Runtime on: ab (Lab units, every
/// second pixel) within 1e-3 of ab/110, and the sampled class logits within 1e-3 (relative to their
/// range).
#[test]
fn the_network_equals_what_onnx_runtime_computes_on_the_exported_graph() {
    let g = common::golden("onnx.json");
    let device = Device::flex();
    let model = rechroma::run::embedded_model(&device).unwrap();
    let Network::Mleu(m) = &model.network else {
        panic!("the default is an MLEU")
    };
    for case in g["cases"].as_array().unwrap() {
        let side = case["side"].as_u64().unwrap() as usize;
        let l = common::f32s(&case["l"]);
        let mut planes = vec![0f32; 3 * side * side];
        for p in case["hint_patches"].as_array().unwrap() {
            let v = common::f32s(p);
            let (x, y) = (v[0] as usize, v[1] as usize);
            for yy in y - 1..=y + 1 {
                for xx in x - 1..=x + 1 {
                    let i = yy * side + xx;
                    planes[i] = v[2] / 110.0;
                    planes[side * side + i] = v[3] / 110.0;
                    planes[2 * side * side + i] = 1.0;
                }
            }
        }
        let input = Tensor::<4>::from_data(TensorData::new(l, [1, 1, side, side]), &device);
        let hints = Tensor::<4>::from_data(TensorData::new(planes, [1, 3, side, side]), &device);
        let out = m.forward_hinted(input, Some(hints));
        let ab: Vec<f32> = out.ab.unwrap().into_data().convert::<f32>().try_into_vec().unwrap();
        let want = common::f32s(&case["ab_every_2"]);
        let mut worst = 0f32;
        let mut k = 0;
        for c in 0..2 {
            for y in (0..side).step_by(2) {
                for x in (0..side).step_by(2) {
                    let got = ab[c * side * side + y * side + x] * 110.0;
                    worst = worst.max((got - want[k]).abs() / 110.0);
                    k += 1;
                }
            }
        }
        let name = case["photo"].as_str().unwrap();
        eprintln!("{name}: max |Δ ab|/110 = {worst:.2e}");
        // 5e-4 of ab/110 is the golden file's rounding (3 decimals of Lab units); 1e-3 the target.
        assert!(
            worst <= 1e-3,
            "{name}: ab differs from ONNX Runtime by {worst} (ab/110)"
        );
        let logits = out.logits.unwrap();
        let [_, q, h, w] = logits.dims();
        assert_eq!(
            [q, h, w],
            [0, 1, 2].map(|i| case["logits_shape"][i].as_u64().unwrap() as usize)
        );
        let z: Vec<f32> = logits.into_data().convert::<f32>().try_into_vec().unwrap();
        for pick in case["logit_picks"].as_array().unwrap() {
            let p = common::f32s(pick);
            let (qq, yy, xx) = (p[0] as usize, p[1] as usize, p[2] as usize);
            let got = z[qq * h * w + yy * w + xx];
            assert!(
                (got - p[3]).abs() <= 1e-3 * p[3].abs().max(10.0),
                "{name}: logit {pick}: {got}"
            );
        }
    }
}

fn graph(bytes: &[u8]) -> (ModelProto, GraphProto) {
    let model: ModelProto = prost::Message::decode(bytes).unwrap();
    let graph = model.graph.clone().unwrap();
    (model, graph)
}

/// Every node reads only graph inputs, initialisers and earlier nodes' outputs; the inputs and outputs
/// are the documented ones for each head, and no BatchNorm is left (they are folded).
#[test]
fn the_exported_graph_is_well_formed_for_every_head() {
    let device = Device::flex();
    let default = rechroma::run::embedded_model(&device).unwrap();
    let mut cases = vec![(
        "default (joint, hints)",
        default.network,
        vec!["l", "hints"],
        vec!["ab", "logits"],
    )];
    for (head, outputs) in [
        (rechroma::model::mleu::Head::Regression, vec!["ab"]),
        (rechroma::model::mleu::Head::Classification, vec!["logits"]),
    ] {
        let config = common::tiny_mleu([4, 8, 8, 8, 8], head);
        cases.push(("tiny", Network::Mleu(config.init(&device)), vec!["l"], outputs));
    }
    for (what, network, inputs, outputs) in cases {
        let bytes = rechroma::onnx::export(&network).unwrap();
        let (model, g) = graph(&bytes);
        assert_eq!(model.opset_import[0].version, rechroma::onnx::OPSET);
        let names = |v: &[rechroma::onnx::proto::ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&g.input), inputs, "{what}");
        assert_eq!(names(&g.output), outputs, "{what}");
        let mut known: std::collections::HashSet<String> = g
            .input
            .iter()
            .map(|i| i.name.clone())
            .chain(g.initializer.iter().map(|t| t.name.clone()))
            .collect();
        for n in &g.node {
            for i in &n.input {
                assert!(
                    i.is_empty() || known.contains(i),
                    "{what}: {} reads {i} before it exists",
                    n.op_type
                );
            }
            known.extend(n.output.iter().cloned());
            assert_ne!(n.op_type, "BatchNormalization", "{what}: BatchNorms are folded");
        }
        for o in outputs {
            assert!(known.contains(o), "{what}: no node writes {o}");
        }
    }
}

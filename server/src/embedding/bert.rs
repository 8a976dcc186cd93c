//! The BERT encoder (embeddings, then self-attention layers) forward pass,
//! single precision on the CPU, from the weights of a Hugging Face
//! `BertModel` checkpoint.
//!
//! Sequences are not padded: the token-wise layers (linear maps, layer
//! normalisation, GELU) run over all tokens of a pass stacked into one
//! matrix, and attention runs per sequence over its own tokens only. This is
//! what the reference computes for the real tokens of a padded batch, whose
//! padding keys get zero attention weight.

use std::path::Path;

use serde::Deserialize;

use super::EmbedError;
use super::matmul::{Matrix, matmul};
use super::model_files::{Tensors, read_json};

/// The parts of config.json the forward pass depends on.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// `y = x Wᵀ + b`, with W stored transposed (`in × out`) for the GEMM.
struct Linear {
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

struct EncoderLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The loaded encoder.
pub(super) struct BertModel {
    config: BertConfig,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
}

impl BertModel {
    /// Reads config.json and model.safetensors from `dir`.
    pub(super) fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let config: BertConfig = read_json(&config_path)?;
        if config.hidden_act != "gelu" {
            return Err(EmbedError::invalid(
                &config_path,
                format!("unsupported hidden_act {}", config.hidden_act),
            ));
        }
        if config.num_attention_heads == 0 || !config.hidden_size.is_multiple_of(config.num_attention_heads) {
            return Err(EmbedError::invalid(
                &config_path,
                "hidden_size is not a multiple of num_attention_heads",
            ));
        }
        let mut t = Tensors::load(&dir.join("model.safetensors"))?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let eps = config.layer_norm_eps as f32;
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                Ok(EncoderLayer {
                    query: Linear::take(&mut t, &format!("{p}.attention.self.query"), h, h)?,
                    key: Linear::take(&mut t, &format!("{p}.attention.self.key"), h, h)?,
                    value: Linear::take(&mut t, &format!("{p}.attention.self.value"), h, h)?,
                    attention_output: Linear::take(&mut t, &format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: LayerNorm::take(&mut t, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    intermediate: Linear::take(&mut t, &format!("{p}.intermediate.dense"), h, i)?,
                    output: Linear::take(&mut t, &format!("{p}.output.dense"), i, h)?,
                    output_norm: LayerNorm::take(&mut t, &format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<_, EmbedError>>()?;
        Ok(Self {
            word_embeddings: t.take("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position_embeddings: t.take(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type_embeddings: t.take("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?,
            embeddings_norm: LayerNorm::take(&mut t, "embeddings.LayerNorm", h, eps)?,
            layers,
            config,
        })
    }

    /// The model's settings.
    pub(super) fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The last hidden states of `sequences` (each at most
    /// `max_position_embeddings` ids below `vocab_size`, all of token type
    /// 0), stacked: one row of `hidden_size` per token, sequence after
    /// sequence.
    pub(super) fn forward(&self, sequences: &[&[u32]]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        let mut x = Vec::with_capacity(tokens * h);
        for seq in sequences {
            assert!(
                seq.len() <= self.config.max_position_embeddings,
                "sequence longer than the position table"
            );
            for (pos, &id) in seq.iter().enumerate() {
                let word = &self.word_embeddings[id as usize * h..][..h];
                let position = &self.position_embeddings[pos * h..][..h];
                let token_type = &self.token_type_embeddings[..h];
                x.extend((0..h).map(|j| word[j] + position[j] + token_type[j]));
            }
        }
        self.embeddings_norm.apply(&mut x);
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut scratch = Scratch::new(tokens, longest, h, self.config.intermediate_size);
        for layer in &self.layers {
            self.encoder_layer(layer, sequences, &mut x, &mut scratch);
        }
        x
    }

    fn encoder_layer(&self, layer: &EncoderLayer, sequences: &[&[u32]], x: &mut [f32], s: &mut Scratch) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        layer.query.apply(x, &mut s.q);
        layer.key.apply(x, &mut s.k);
        layer.value.apply(x, &mut s.v);
        let mut start = 0;
        for seq in sequences {
            let n = seq.len();
            let rows = start * h..(start + n) * h;
            let (q, k, v) = (&s.q[rows.clone()], &s.k[rows.clone()], &s.v[rows.clone()]);
            let context = &mut s.context[rows];
            let scores = &mut s.scores[..n * n];
            for head in 0..heads {
                let q_h = Matrix::rows(&q[head * d..], n, d, h);
                let k_h = Matrix::rows(&k[head * d..], n, d, h);
                let v_h = Matrix::rows(&v[head * d..], n, d, h);
                matmul(scale, q_h, k_h.t(), scores, n);
                scores.chunks_exact_mut(n).for_each(softmax);
                matmul(1.0, Matrix::rows(scores, n, n, n), v_h, &mut context[head * d..], h);
            }
            start += n;
        }
        layer.attention_output.apply(&s.context, &mut s.q);
        add(x, &s.q);
        layer.attention_norm.apply(x);
        layer.intermediate.apply(x, &mut s.intermediate);
        s.intermediate.iter_mut().for_each(|a| *a = gelu(*a));
        layer.output.apply(&s.intermediate, &mut s.q);
        add(x, &s.q);
        layer.output_norm.apply(x);
    }
}

/// Buffers of one pass, reused by every layer.
struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    context: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
}

impl Scratch {
    /// For `tokens` tokens in all, the longest sequence `longest` long.
    fn new(tokens: usize, longest: usize, hidden: usize, intermediate: usize) -> Self {
        Self {
            q: vec![0.0; tokens * hidden],
            k: vec![0.0; tokens * hidden],
            v: vec![0.0; tokens * hidden],
            context: vec![0.0; tokens * hidden],
            intermediate: vec![0.0; tokens * intermediate],
            scores: vec![0.0; longest * longest],
        }
    }
}

impl Linear {
    /// Takes `{name}.weight` (`outputs × inputs`) and `{name}.bias`.
    fn take(t: &mut Tensors, name: &str, inputs: usize, outputs: usize) -> Result<Self, EmbedError> {
        let weight = t.take(&format!("{name}.weight"), &[outputs, inputs])?;
        let bias = t.take(&format!("{name}.bias"), &[outputs])?;
        let mut weight_t = vec![0.0; weight.len()];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (k, &w) in row.iter().enumerate() {
                weight_t[k * outputs + o] = w;
            }
        }
        Ok(Self {
            weight_t,
            bias,
            inputs,
            outputs,
        })
    }

    /// `out = x Wᵀ + b` for every row of `x`.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let rows = x.len() / self.inputs;
        matmul(
            1.0,
            Matrix::rows(x, rows, self.inputs, self.inputs),
            Matrix::rows(&self.weight_t, self.inputs, self.outputs, self.outputs),
            out,
            self.outputs,
        );
        for row in out[..rows * self.outputs].chunks_exact_mut(self.outputs) {
            add(row, &self.bias);
        }
    }
}

impl LayerNorm {
    /// Takes `{name}.weight` and `{name}.bias`, both `hidden` long.
    fn take(t: &mut Tensors, name: &str, hidden: usize, eps: f32) -> Result<Self, EmbedError> {
        Ok(Self {
            weight: t.take(&format!("{name}.weight"), &[hidden])?,
            bias: t.take(&format!("{name}.bias"), &[hidden])?,
            eps,
        })
    }

    /// Normalises every row of `x` in place to zero mean and unit variance,
    /// then scales and shifts it.
    fn apply(&self, x: &mut [f32]) {
        let h = self.weight.len();
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().map(|&a| a as f64).sum::<f64>() / h as f64;
            let var = row.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / h as f64;
            let inv = 1.0 / (var + self.eps as f64).sqrt();
            for ((a, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *a = ((*a as f64 - mean) * inv) as f32 * w + b;
            }
        }
    }
}

fn add(acc: &mut [f32], other: &[f32]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a += b);
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for a in row.iter_mut() {
        *a = (*a - max).exp();
        sum += *a;
    }
    row.iter_mut().for_each(|a| *a /= sum);
}

/// BERT's GELU: the exact form with the error function, not the tanh
/// approximation.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

//! From token states to one sentence vector: the mean over the sequence's
//! tokens (all real, `[CLS]` and `[SEP]` included, as the attention mask
//! counts them), scaled to unit length.

/// The unit-length mean of `states`' rows (`hidden` wide); a zero mean
/// stays zero instead of dividing by zero.
pub(super) fn mean_pool_normalized(states: &[f32], hidden: usize) -> Vec<f32> {
    let rows = states.len() / hidden;
    let mut sum = vec![0.0f64; hidden];
    for row in states.chunks_exact(hidden) {
        sum.iter_mut().zip(row).for_each(|(s, &a)| *s += a as f64);
    }
    let mean: Vec<f64> = sum.into_iter().map(|s| s / rows.max(1) as f64).collect();
    // The reference's floor under the norm (torch.nn.functional.normalize).
    let norm = mean.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
    mean.into_iter().map(|a| (a / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_of_the_rows_comes_out_at_unit_length() {
        let v = mean_pool_normalized(&[1.0, 0.0, 5.0, 8.0], 2);
        assert_eq!(v, [0.6, 0.8]);
    }
}

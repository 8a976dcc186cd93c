//! What a vector must be for every score computed from it to be a number,
//! and the right one.
//!
//! pgvector computes in float32: a distance or similarity sums float32
//! products in float32. Two ends of that range break scores.
//!
//! * A squared norm that overflows float32 makes distances infinite and
//!   similarities NaN. Bounding the squared norm by a quarter of float32's
//!   maximum keeps every distance and inner product between two valid
//!   vectors finite: |a - b|² ≤ (|a| + |b|)² ≤ 4 · max(|a|², |b|²).
//! * A cosine similarity divides by the norms, and pgvector sums the squares
//!   in float32 too. Where that sum is zero (every component below about
//!   2.6e-23, whose square float32 rounds to zero, although the norm in
//!   double precision is not) the similarity is 0/0, NaN, and PostgreSQL
//!   sorts NaN above every number; where the sum is subnormal, below
//!   float32's smallest normal number, it has lost digits and similarities
//!   come out wrong (`[3e-23; 3]` scores 0.46 against `[1, 0, 0]`, not
//!   0.577). So a cosine collection refuses every vector whose squared norm,
//!   summed as pgvector sums it, is below [`MIN_COSINE_SQUARED_NORM`], in
//!   every form pgvector scores it: the float32 vector the document keeps,
//!   and, in a half-precision HNSW graph, the vector rounded to half
//!   precision (there a vector whose every component rounds to zero has no
//!   direction, and pgvector leaves it out of the graph).
//!
//! A collection whose HNSW graph holds half-precision vectors also needs
//! every component to fit in a half, or PostgreSQL refuses the row (and the
//! query vector) outright.

use super::{CollectionSpec, IndexPrecision, Metric};

/// The largest squared norm a vector may have: float32's maximum / 4.
pub const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 4.0;

/// The smallest squared norm, summed in float32 as pgvector sums it, that a
/// vector of a cosine collection may have: float32's smallest normal number
/// (2⁻¹²⁶, about 1.18e-38). Below it the sum is subnormal or zero.
pub const MIN_COSINE_SQUARED_NORM: f32 = f32::MIN_POSITIVE;

/// What a collection asks of every vector, stored or searched for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorRules {
    /// Components per vector.
    pub dimension: usize,
    /// How vectors are compared.
    pub metric: Metric,
    /// Whether the HNSW graph holds the vectors in half precision.
    pub half_precision: bool,
}

impl VectorRules {
    /// The rules of a collection.
    pub fn of(spec: &CollectionSpec) -> Self {
        Self {
            dimension: spec.dimension as usize,
            metric: spec.metric,
            half_precision: spec.index.precision() == Some(IndexPrecision::Half),
        }
    }

    /// Checks a vector; the description of the first problem, naming the limit.
    pub fn check(&self, vector: &[f32]) -> Result<(), String> {
        check_vector(vector, self.dimension, self.metric)?;
        if self.metric == Metric::Cosine {
            self.check_direction(vector)?;
        }
        if !self.half_precision {
            return Ok(());
        }
        let largest = IndexPrecision::HALF_MAX;
        if let Some(position) = vector.iter().position(|x| x.abs() > largest) {
            return Err(format!(
                "component {position} is {}; the collection's HNSW index holds vectors in half precision, \
                 whose components must lie within ±{largest}: scale the vector down (every score scales \
                 with it) or use a collection with index precision single",
                vector[position]
            ));
        }
        Ok(())
    }

    /// Checks that pgvector can compute the cosine similarity of `vector`
    /// (already finite, not all zeros, of the right dimension): its squared
    /// norm, in every form pgvector scores it, is a normal float32.
    fn check_direction(&self, vector: &[f32]) -> Result<(), String> {
        let single = squared_norm_in_float32(vector.iter().copied());
        if single < MIN_COSINE_SQUARED_NORM {
            let rounds = if single == 0.0 {
                "rounds to zero in single precision (float32), where pgvector computes cosine similarity, so \
                 every similarity to it would be NaN"
                    .to_owned()
            } else {
                format!(
                    "is {single:e} in single precision (float32), where pgvector computes cosine similarity: \
                     below float32's smallest normal number, its similarities lose their digits"
                )
            };
            return Err(format!(
                "the vector's squared norm {rounds}; the smallest accepted is {MIN_COSINE_SQUARED_NORM:e}: scale \
                 the vector up (its cosine similarities do not change)"
            ));
        }
        if !self.half_precision {
            return Ok(());
        }
        let half = squared_norm_in_float32(vector.iter().map(|&x| {
            // Every half above zero squares to a normal float32 (2⁻⁴⁸ at
            // least), so only which components vanish matters here.
            if x.abs() <= IndexPrecision::HALF_ROUNDS_TO_ZERO {
                0.0
            } else {
                x
            }
        }));
        if half < MIN_COSINE_SQUARED_NORM {
            return Err(format!(
                "every component is at most {:e} in magnitude, which half precision rounds to zero, so the \
                 vector's norm rounds to zero in the collection's half-precision HNSW index: scale the vector \
                 up (its cosine similarities do not change)",
                IndexPrecision::HALF_ROUNDS_TO_ZERO
            ));
        }
        Ok(())
    }
}

/// The squared norm of `components` as pgvector computes it: each square
/// rounded to float32 and summed in float32. pgvector's compiler may add in
/// any order, but every term is non-negative, so whether the sum is below
/// float32's smallest normal number is the same in every order: below it,
/// float32 adds exactly.
fn squared_norm_in_float32(components: impl Iterator<Item = f32>) -> f32 {
    components.map(|x| x * x).sum()
}

/// Checks a vector for a collection of `dimension` and `metric`; the
/// description of the first problem, naming the limit.
fn check_vector(vector: &[f32], dimension: usize, metric: Metric) -> Result<(), String> {
    if vector.len() != dimension {
        return Err(format!(
            "vector has {} components; the collection's dimension is {dimension}",
            vector.len()
        ));
    }
    if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "component {position} is {}; components must be finite",
            vector[position]
        ));
    }
    let squared_norm: f64 = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
    if squared_norm > MAX_SQUARED_NORM {
        return Err(format!(
            "the vector's norm is {:.3e}; the limit is {:.3e} (float32's maximum / 4, squared), so that \
             distances stay finite: scale it down",
            squared_norm.sqrt(),
            MAX_SQUARED_NORM.sqrt()
        ));
    }
    if metric == Metric::Cosine && squared_norm == 0.0 {
        return Err(
            "the vector is all zeros; a cosine collection needs a direction (its similarity to \
                    anything is undefined)"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_vectors_are_refused_only_where_cosine_needs_a_direction() {
        assert!(
            check_vector(&[0.0, 0.0], 2, Metric::Cosine)
                .unwrap_err()
                .contains("all zeros")
        );
        assert!(check_vector(&[0.0, 0.0], 2, Metric::L2).is_ok());
        assert!(check_vector(&[0.0, 0.0], 2, Metric::InnerProduct).is_ok());
    }

    #[test]
    fn norms_whose_distances_could_overflow_float32_are_refused() {
        let error = check_vector(&[3e38, 3e38, 3e38], 3, Metric::L2).unwrap_err();
        assert!(error.contains("norm") && error.contains("limit"), "{error}");
        let largest = (MAX_SQUARED_NORM.sqrt() * 0.999) as f32;
        assert!(check_vector(&[largest], 1, Metric::L2).is_ok());
        let difference = f64::from(largest) * 2.0;
        assert!(
            (difference * difference) < f64::from(f32::MAX),
            "the farthest pair stays finite"
        );
    }

    #[test]
    fn half_precision_indexes_bound_every_component() {
        let rules = |metric, half_precision| VectorRules {
            dimension: 2,
            metric,
            half_precision,
        };
        let error = rules(Metric::L2, true).check(&[1.0, -70000.0]).unwrap_err();
        assert!(error.contains("component 1") && error.contains("65504"), "{error}");
        assert!(rules(Metric::L2, true).check(&[65504.0, -65504.0]).is_ok());
        assert!(rules(Metric::L2, false).check(&[1.0, -70000.0]).is_ok());

        // Directions that half precision would erase, where cosine needs one.
        let tiny = [1e-8, -2e-8];
        let error = rules(Metric::Cosine, true).check(&tiny).unwrap_err();
        assert!(error.contains("rounds to zero"), "{error}");
        assert!(rules(Metric::Cosine, true).check(&[1e-8, 1e-7]).is_ok());
        assert!(rules(Metric::Cosine, false).check(&tiny).is_ok());
        assert!(rules(Metric::L2, true).check(&tiny).is_ok());
    }

    #[test]
    fn cosine_refuses_squared_norms_that_float32_sums_below_its_smallest_normal() {
        let cosine = |half_precision| VectorRules {
            dimension: 3,
            metric: Metric::Cosine,
            half_precision,
        };
        // 2⁻⁶³ squares to 2⁻¹²⁶, float32's smallest normal number, exactly.
        let smallest = 2f32.powi(-63);
        let below = f32::from_bits(smallest.to_bits() - 1);
        assert!(cosine(false).check(&[smallest, 0.0, 0.0]).is_ok());
        let error = cosine(false).check(&[below, 0.0, 0.0]).unwrap_err();
        assert!(error.contains("below float32's smallest normal"), "{error}");
        assert!(error.contains("1.1754944e-38"), "{error}");
        // Each square rounds to zero in float32, not in double precision.
        let error = cosine(false).check(&[1e-30; 3]).unwrap_err();
        assert!(error.contains("rounds to zero in single precision"), "{error}");
        // Many small squares add up to a normal sum.
        assert!(cosine(false).check(&[smallest * 0.6; 3]).is_ok());
        // L2 and inner product divide by no norm.
        for metric in [Metric::L2, Metric::InnerProduct] {
            let rules = VectorRules {
                metric,
                ..cosine(false)
            };
            assert!(rules.check(&[1e-30; 3]).is_ok());
        }
        // The half-precision graph rounds each component first.
        let half_zero = IndexPrecision::HALF_ROUNDS_TO_ZERO;
        assert!(
            cosine(true)
                .check(&[half_zero; 3])
                .unwrap_err()
                .contains("half precision rounds")
        );
        assert!(cosine(false).check(&[half_zero; 3]).is_ok());
    }

    #[test]
    fn dimension_and_finiteness_come_first() {
        assert!(
            check_vector(&[1.0], 2, Metric::L2)
                .unwrap_err()
                .contains("dimension is 2")
        );
        assert!(
            check_vector(&[f32::NAN, 1.0], 2, Metric::L2)
                .unwrap_err()
                .contains("finite")
        );
    }
}

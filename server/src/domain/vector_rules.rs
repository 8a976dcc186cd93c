//! What a vector must be for every score computed from it to be a number.
//!
//! pgvector computes in float32. A cosine similarity with an all-zero vector
//! is 0/0, NaN, and PostgreSQL sorts NaN above every number, so such a
//! document would outrank the true nearest neighbour; a vector whose squared
//! norm overflows float32 makes distances infinite and similarities NaN.
//! Bounding the squared norm by a quarter of float32's maximum keeps every
//! distance and inner product between two valid vectors finite:
//! |a - b|² ≤ (|a| + |b|)² ≤ 4 · max(|a|², |b|²). A collection whose HNSW
//! graph holds half-precision vectors also needs every component to fit in
//! a half, or PostgreSQL refuses the row (and the query vector) outright.

use super::{CollectionSpec, IndexPrecision, Metric};

/// The largest squared norm a vector may have: float32's maximum / 4.
pub const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 4.0;

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
        // pgvector leaves a vector without a direction out of a cosine graph,
        // so only exact search would find it.
        if self.metric == Metric::Cosine && vector.iter().all(|x| x.abs() <= IndexPrecision::HALF_ROUNDS_TO_ZERO) {
            return Err(format!(
                "every component is at most {:e} in magnitude, which half precision rounds to zero, and the \
                 collection's HNSW index holds vectors in half precision: scale the vector up (its cosine \
                 similarities do not change)",
                IndexPrecision::HALF_ROUNDS_TO_ZERO
            ));
        }
        Ok(())
    }
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

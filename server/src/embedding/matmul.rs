//! A safe face for `matrixmultiply::sgemm`: single-precision C = α A B over
//! strided views of slices, bounds checked once per call.

/// A read-only `rows × cols` matrix inside a slice: element (i, j) is at
/// `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// A row-major matrix whose rows are `row_stride` apart.
    pub(super) fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose, no copy made.
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// Last index a strided view touches, plus one (0 for an empty view).
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + (cols - 1) * col_stride + 1
    }
}

/// Overwrites the row-major `a.rows × b.cols` matrix in `c` (rows
/// `c_row_stride` apart) with `alpha · a · b`.
///
/// # Panics
/// If the inner dimensions differ or a view reaches past its slice.
pub(super) fn matmul(alpha: f32, a: Matrix<'_>, b: Matrix<'_>, c: &mut [f32], c_row_stride: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert!(extent(a.rows, a.cols, a.row_stride, a.col_stride) <= a.data.len());
    assert!(extent(b.rows, b.cols, b.row_stride, b.col_stride) <= b.data.len());
    assert!(extent(a.rows, b.cols, c_row_stride, 1) <= c.len());
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    // SAFETY: the asserts above keep every element sgemm reads within `a`
    // and `b` and every element it writes within `c`, which is borrowed
    // mutably, so it aliases neither; beta = 0 means `c` is not read.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            0.0,
            c.as_mut_ptr(),
            c_row_stride as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_a_matrix_by_a_transposed_one() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
        let b = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]; // 2 × 3, used as 3 × 2
        let mut c = [0.0; 4];
        matmul(2.0, Matrix::rows(&a, 2, 3, 3), Matrix::rows(&b, 2, 3, 3).t(), &mut c, 2);
        assert_eq!(c, [8.0, 10.0, 20.0, 22.0]);
    }
}

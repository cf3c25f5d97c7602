//! AVX-512 pieces shared by the engine's intrinsic kernels ([`super::small`], [`super::winograd`]).

use super::conv::Act;
use std::arch::x86_64::*;

/// The mask of the first `len` of 16 lanes (all of them from 16 up).
#[inline(always)]
pub(super) fn mask(len: usize) -> __mmask16 {
    if len >= 16 { 0xffff } else { (1u16 << len) - 1 }
}

/// `act` applied to 16 values (tanh through [`Act::apply`], lane by lane).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn activate(act: Act, v: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    match act {
        Act::Identity => v,
        Act::Relu => _mm512_max_ps(v, zero),
        Act::Relu6 => _mm512_min_ps(_mm512_max_ps(v, zero), _mm512_set1_ps(6.0)),
        Act::Tanh => {
            let mut a = [0.0f32; 16];
            // SAFETY: `a` holds 16 values.
            unsafe { _mm512_storeu_ps(a.as_mut_ptr(), v) };
            Act::Tanh.apply(&mut a);
            // SAFETY: as above.
            unsafe { _mm512_loadu_ps(a.as_ptr()) }
        }
    }
}

import Kernels

/// The teacher's exponential moving average (ssl_meta_arch.py `update_teacher`; spec §4.5) over
/// every parameter of a module, right after the optimiser step:
///   θ_t ← θ_t · m;  θ_t ← θ_t + (1 − m) · θ_s     (`_foreach_mul_` then `_foreach_add_`)
/// The teacher's `mask_token` is updated too, though the teacher never uses it.
public func updateTeacher(_ teacher: ParameterBlock, from student: ParameterBlock, momentum: Double,
                          parallelism: Parallelism) {
    precondition(teacher.layout == student.layout, "teacher and student modules differ")
    let m = Float(momentum), a = Float(1 - momentum)
    let t = teacher.base, s = student.base, n = teacher.count
    parallelFor(n, pieces(n, work: n * 4, minimum: 4096, parallelism)) { range in
        for i in range { t[i] = t[i] * m + a * s[i] }
    }
}

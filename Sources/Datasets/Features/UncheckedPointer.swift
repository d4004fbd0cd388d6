/// A raw pointer carried into a parallel loop body whose workers touch disjoint parts of it.
/// Package-wide because k-NN (here) and the probe's logistic loss (Evaluation) both split rows
/// across workers this way.
package struct UncheckedPointer<T>: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<T>
    package init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

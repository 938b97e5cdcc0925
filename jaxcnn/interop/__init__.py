"""Interoperability with other frameworks' weight files (Caffe: `jaxcnn.interop.caffe`)."""

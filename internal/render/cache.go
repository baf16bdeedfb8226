package render

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// cachePVC is the model cache claim when spec.modelCache.size is set, else nil. It is
// ReadWriteOnce, the mode every storage class offers: engine pods share it on one node.
// Replicas spread over nodes need an existing ReadWriteMany claim (modelCache.claimName).
func cachePVC(qs *v1alpha1.QwenService) *corev1.PersistentVolumeClaim {
	mc := qs.Spec.ModelCache
	if mc == nil || mc.Size == nil {
		return nil
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: objectMeta(qs, CacheName(qs), ComponentCache),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: mc.Size.DeepCopy()},
			},
		},
	}
	if mc.StorageClassName != "" {
		pvc.Spec.StorageClassName = &mc.StorageClassName
	}
	return pvc
}

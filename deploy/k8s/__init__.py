"""Kubernetes: the compose file's serving service and ``tfsk.toml``'s ``[kubernetes]`` as manifests.

- :mod:`._k8s_settings` reads ``[kubernetes]``; :mod:`._k8s` renders the manifests (kustomize layout).
- :mod:`._k8s_checks` checks them against the stack and the bundled Kubernetes schemas.
- :mod:`._k8s_image` bakes the models into an image ``FROM`` the serving image.
"""

from ._k8s import (
    CONFIG_MAP_FILE,
    MANIFESTS_DIR,
    KubernetesManifests,
    render_kubernetes,
    write_config_map,
    write_manifests,
)
from ._k8s_checks import (
    KUBERNETES_VERSION,
    SchemaResult,
    check_manifests,
    check_rendered_config_map,
    validate_with_kubernetes_schemas,
)
from ._k8s_image import (
    SERVING_DOCKERFILE,
    ServingImage,
    build_serving_image,
    serving_dockerfile,
)
from ._k8s_settings import MODEL_SOURCES, KubernetesSettings, kubernetes_declared, read_kubernetes_settings

__all__ = [
    "CONFIG_MAP_FILE",
    "KUBERNETES_VERSION",
    "MANIFESTS_DIR",
    "MODEL_SOURCES",
    "SERVING_DOCKERFILE",
    "KubernetesManifests",
    "KubernetesSettings",
    "SchemaResult",
    "ServingImage",
    "build_serving_image",
    "check_manifests",
    "check_rendered_config_map",
    "kubernetes_declared",
    "read_kubernetes_settings",
    "render_kubernetes",
    "serving_dockerfile",
    "validate_with_kubernetes_schemas",
    "write_config_map",
    "write_manifests",
]

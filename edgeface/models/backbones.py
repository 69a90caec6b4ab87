"""Registered backbones. Each builder maps an input tensor to a pooled feature tensor in one flat graph.

Flat (not nested) graphs matter: tfmot cannot quantize a Keras model nested inside another one, and
structured pruning walks layers directly. Registering imports no TensorFlow (builders import Keras when they
run), so a backbone's config can be read by commands that only run exported artifacts.
"""
from __future__ import annotations

from edgeface.models.registry import BackboneConfig, register_backbone
from edgeface.models.weights import build_with_imagenet

INCEPTION = (127.5, 127.5, 127.5)  # Keras "tf" mode: x / 127.5 - 1
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras "caffe" mode: BGR, mean subtracted, no scaling
UNIT = (1.0, 1.0, 1.0)
ZERO = (0.0, 0.0, 0.0)


def _application(app_name, inputs, config, alpha, weights, weights_dir=None, **kwargs):
    """Builds a keras.applications network on `inputs`, then loads ImageNet weights from a local file."""
    import tf_keras as keras

    app_fn = getattr(keras.applications, app_name)
    if config.default_alpha is not None:
        kwargs["alpha"] = alpha
    kwargs.update(input_tensor=inputs, include_top=False, pooling="avg")
    if weights == "imagenet":
        return build_with_imagenet(app_fn, config, weights_dir, **kwargs).output
    return app_fn(weights=None, **kwargs).output


def _keras_app(name, app_name, family, sizes, mean, std, channel_order="RGB", imagenet_files=None,
               default_alpha=None, description="", **app_kwargs):
    config = BackboneConfig(
        name=name, family=family, default_input_size=sizes[0], min_input_size=sizes[1],
        max_input_size=sizes[2], mean=mean, std=std, channel_order=channel_order,
        imagenet_files=imagenet_files or {}, default_alpha=default_alpha, description=description)

    @register_backbone(config)
    def build(inputs, alpha=None, weights=None, weights_dir=None):
        return _application(app_name, inputs, config, alpha, weights, weights_dir, **app_kwargs)

    return build


_keras_app(
    "mobilenet_v2", "MobileNetV2", "lightweight", (128, 32, 512), INCEPTION, INCEPTION,
    imagenet_files={a: f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{a}_*_no_top.h5"
                    for a in ("0.35", "0.5", "0.75", "1.0", "1.3", "1.4")},
    default_alpha=1.0, description="MobileNetV2 (Sandler et al. 2018), width multiplier alpha")
_keras_app(
    "mobilenet_v1", "MobileNet", "lightweight", (128, 32, 512), INCEPTION, INCEPTION,
    imagenet_files={a: f"mobilenet_{t}_*_tf_no_top.h5"
                    for a, t in (("0.25", "2_5"), ("0.5", "5_0"), ("0.75", "7_5"), ("1.0", "1_0"))},
    default_alpha=1.0, description="MobileNet v1 (Howard et al. 2017), width multiplier alpha")
# include_preprocessing=False: the [-1, 1] scaling lives in the shared preprocessing, like every other backbone.
_keras_app(
    "mobilenet_v3_small", "MobileNetV3Small", "lightweight", (128, 32, 512), INCEPTION, INCEPTION,
    imagenet_files={a: f"weights_mobilenet_v3_small_224_{a}_float_no_top_v2.h5" for a in ("0.75", "1.0")},
    default_alpha=1.0, description="MobileNetV3-Small (Howard et al. 2019)", include_preprocessing=False)
_keras_app(
    "mobilenet_v3_large", "MobileNetV3Large", "lightweight", (128, 32, 512), INCEPTION, INCEPTION,
    imagenet_files={a: f"weights_mobilenet_v3_large_224_{a}_float_no_top_v2.h5" for a in ("0.75", "1.0")},
    default_alpha=1.0, description="MobileNetV3-Large (Howard et al. 2019)", include_preprocessing=False)
# EfficientNet rescales inside the network (Rescaling + Normalization layers): feed raw 0-255 pixels.
_keras_app(
    "efficientnet_b0", "EfficientNetB0", "lightweight", (128, 32, 512), ZERO, UNIT,
    imagenet_files={None: "efficientnetb0_notop.h5"},
    description="EfficientNet-B0 (Tan & Le 2019); normalizes inside the network")
_keras_app(
    "resnet50", "ResNet50", "full-size", (128, 32, 512), CAFFE_MEAN_BGR, UNIT, channel_order="BGR",
    imagenet_files={None: "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"},
    description="ResNet-50 (He et al. 2016), Caffe preprocessing (BGR, mean subtracted)")
_keras_app(
    "inception_v3", "InceptionV3", "full-size", (139, 75, 512), INCEPTION, INCEPTION,
    imagenet_files={None: "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"},
    description="Inception v3 (Szegedy et al. 2016)")
_keras_app(
    "inception_resnet_v2", "InceptionResNetV2", "full-size", (139, 75, 512), INCEPTION, INCEPTION,
    imagenet_files={None: "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"},
    description="Inception-ResNet v2 (Szegedy et al. 2017)")
_keras_app(
    "vgg16", "VGG16", "full-size", (128, 32, 512), CAFFE_MEAN_BGR, UNIT, channel_order="BGR",
    imagenet_files={None: "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"},
    description="VGG-16 (Simonyan & Zisserman 2015), Caffe preprocessing (BGR, mean subtracted)")
_keras_app(
    "vgg19", "VGG19", "full-size", (128, 32, 512), CAFFE_MEAN_BGR, UNIT, channel_order="BGR",
    imagenet_files={None: "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"},
    description="VGG-19 (Simonyan & Zisserman 2015), Caffe preprocessing (BGR, mean subtracted)")
# EfficientNetV2 rescales inside the network too (its Rescaling layer): raw 0-255 pixels.
_keras_app(
    "efficientnet_v2_b0", "EfficientNetV2B0", "lightweight", (128, 32, 512), ZERO, UNIT,
    imagenet_files={None: "efficientnetv2-b0_notop.h5"},
    description="EfficientNetV2-B0 (Tan & Le 2021); normalizes inside the network")



# Small from-scratch nets see few steps: BN momentum 0.9 (not Keras' 0.99) lets the moving statistics
# settle within a short run, so validation does not score with stale statistics.
@register_backbone(BackboneConfig(
    name="levi_hassner", family="lightweight", default_input_size=128, min_input_size=32,
    max_input_size=256, mean=INCEPTION, std=INCEPTION,
    description="Levi & Hassner 2015: 3 conv + 2 FC(512) with dropout; batch norm before the ReLU stands in "
                "for LRN, which edge runtimes rarely accelerate"))
def levi_hassner(inputs, alpha=None, weights=None, weights_dir=None):
    from tf_keras import layers

    # conv-BN-ReLU (not the paper's conv-ReLU-pool-norm order) so that int8 conversion folds each BN into its
    # convolution; a BN after the ReLU stays a float op and the next convolution keeps float32 weights in a
    # quantization-aware file
    x = inputs
    for i, (filters, kernel, stride) in enumerate(((96, 7, 4), (256, 5, 1), (384, 3, 1)), start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=i == 3, name=f"conv{i}")(x)
        if i < 3:
            x = layers.BatchNormalization(momentum=0.9, name=f"norm{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = layers.Dense(512, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(0.5, name=f"fc{i}_dropout")(x)
    return x


@register_backbone(BackboneConfig(
    name="compact_cnn", family="lightweight", default_input_size=96, min_input_size=32, max_input_size=256,
    mean=INCEPTION, std=INCEPTION, description="Four conv-BN-ReLU-pool blocks (16, 32, 64, 128 filters), GAP"))
def compact_cnn(inputs, alpha=None, weights=None, weights_dir=None):
    from tf_keras import layers

    x = inputs
    for i, filters in enumerate((16, 32, 64, 128), start=1):  # BN before ReLU folds into the int8 convolution
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


@register_backbone(BackboneConfig(
    name="resnet34", family="full-size", default_input_size=128, min_input_size=32, max_input_size=512,
    mean=INCEPTION, std=INCEPTION,
    description="ResNet-34 (He et al. 2016): basic blocks 3-4-6-3 (64-512 filters), GAP; Keras ships no ImageNet "
                "weights for it, so it trains from scratch"))
def resnet34(inputs, alpha=None, weights=None, weights_dir=None):
    from tf_keras import layers

    def conv_bn(x, filters, kernel, stride, name, relu=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    x = conv_bn(inputs, 64, 7, 2, "conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (filters, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=2):
        for block in range(1, blocks + 1):
            name, stride = f"conv{stage}_block{block}", 2 if block == 1 and stage > 2 else 1
            shortcut = x
            if stride != 1 or x.shape[-1] != filters:  # projection shortcut (option B of the paper)
                shortcut = conv_bn(x, filters, 1, stride, f"{name}_0", relu=False)
            y = conv_bn(x, filters, 3, stride, f"{name}_1")
            y = conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


@register_backbone(BackboneConfig(
    name="vit", family="full-size", default_input_size=128, min_input_size=32, max_input_size=512,
    mean=INCEPTION, std=INCEPTION, input_multiple=8,
    description="Small ViT (Dosovitskiy et al. 2021): 8x8 patch grid, 6 blocks, dim 192, 3 heads, mean-pooled"))
def vit(inputs, alpha=None, weights=None, weights_dir=None, dim=192, depth=6, heads=3, mlp_dim=384):
    from tf_keras import layers

    from edgeface.models.layers import PositionEmbedding

    patch = inputs.shape[1] // 8  # ModelSpec checks the size is a multiple of 8
    x = layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(inputs)
    x = layers.Reshape((64, dim), name="tokens")(x)
    x = PositionEmbedding(name="pos_embed")(x)
    for i in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        y = layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(y, y)
        x = layers.Add(name=f"block{i}_add1")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        y = layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp1")(y)
        y = layers.Dense(dim, name=f"block{i}_mlp2")(y)
        x = layers.Add(name=f"block{i}_add2")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    return layers.GlobalAveragePooling1D(name="avg_pool")(x)

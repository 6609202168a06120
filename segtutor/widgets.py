"""Interactive figures for the lessons, all built on one pattern.

A widget here is three layers, so that what it shows can be tested without a browser
and still appears in a static render of the notebook:

1. **State** — a plain Python object (a subclass of :class:`Explorer`). Its attributes
   are the current choices; its ``set(...)`` method checks new choices (``ValueError``
   or ``TypeError`` naming what is allowed), updates the state and returns the array
   that is drawn. Tests drive this layer and assert on values.
2. **Figure** — one matplotlib :class:`~matplotlib.figure.Figure`, made without
   ``pyplot`` (so ``%matplotlib inline`` never shows it twice), drawn once by
   ``_draw(fig)``. A change only updates the existing artists in ``_update()``
   (``set_data``, ``set_text``) and renders PNG bytes: no new figure per change.
   The artists listed by ``_dynamic_artists()`` are redrawn over a saved copy of
   the rest of the figure (blitting), which keeps a redraw well under 200 ms; call
   ``_invalidate()`` when something else changes (a new input image, say).
3. **View** — :meth:`Explorer.widget` builds, on first display, an
   ``ipywidgets.VBox`` of labelled, keyboard-usable controls (dropdowns, sliders,
   each with a ``description``) above an ``ipywidgets.Image`` whose ``value`` gets
   the new PNG after each change. :meth:`Explorer._repr_mimebundle_` returns the
   widget view *and* an ``image/png`` of the current state, so nbval, nbconvert and
   GitHub (no widget front end) show the figure instead of nothing.

Adding a widget
---------------
Subclass :class:`Explorer` and write:

* ``__init__``: store the state, then call ``super().__init__()``;
* ``set(**choices)``: validate, update, call :meth:`Explorer.refresh`, return what is drawn;
* ``_draw(fig)``: make the axes and artists once, keep them on ``self``;
* ``_update()``: push the state into those artists;
* ``_dynamic_artists()``: the artists ``_update()`` changes on cheap updates (the rest
  is drawn once; call ``self._invalidate()`` when it changes);
* ``_controls()``: return ``[(name, ipywidgets control), ...]``; the base class calls
  ``self.set(name=value)`` when a control changes;
* ``_sync_controls(controls)`` (optional): bring options and ranges in line with the state.

Use colour-blind-safe colour maps (``viridis``, ``cividis``; Okabe–Ito for lines),
keep classes, instances and clusters in distinct schemes, and keep a redraw under
200 ms (the lesson benchmarks print the figure).

Widgets
-------
:class:`FeatureMapExplorer`
    pick a backbone, a stage and a channel, and see that channel's feature map on a
    chosen image (lesson 03).
:class:`LabelMapExplorer`
    a scene's class and instance maps, one pixel inspected, IoU of a shifted copy (lesson 00).
:class:`ThresholdExplorer`, :class:`LocalThresholdExplorer`
    a threshold over the histogram with the mask and its IoU; block size and offset of a
    local threshold on uneven lighting (lesson 01).
:class:`KMeansExplorer`
    k and the position weight of k-means, clusters in their mean colour, mIoU (lesson 02).
:class:`DetectionExplorer`
    Mask R-CNN's detections with a score-threshold slider and toggles for boxes,
    masks and labels (lesson 06).
:class:`FCNExplorer`
    validation scenes through FCN-32s, FCN-16s and FCN-8s side by side, a slider over the
    scenes and a zoom on the boundaries (lesson 04).
:class:`WeakLabelExplorer`
    a training scene's boxes, each kind of pseudo-mask made from them and the true masks,
    a slider over the scenes (lesson 05).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np

from segtutor._checks import as_int, describe

__all__ = [
    "DetectionExplorer", "Explorer", "FeatureMapExplorer", "KMeansExplorer", "LabelMapExplorer",
    "LocalThresholdExplorer", "ThresholdExplorer", "FCNExplorer", "WeakLabelExplorer",
]


class Explorer:
    """Base class of the course's widgets: a state object that draws itself.

    See the module docstring for the pattern. Subclasses set :attr:`figsize` and
    :attr:`dpi` and implement ``set``, ``_draw``, ``_update`` and ``_controls``.

    Examples
    --------
    A complete widget: a slider picks the seed of an 8 x 8 noise image.

    >>> class Noise(Explorer):
    ...     figsize = (3, 3)
    ...     def __init__(self):
    ...         self.seed = 0
    ...         super().__init__()
    ...     def set(self, *, seed=None):
    ...         if seed is not None:
    ...             self.seed = seed
    ...         if self._figure is not None:
    ...             self.refresh()
    ...         return self.values()
    ...     def values(self):
    ...         return np.random.default_rng(self.seed).random((8, 8))
    ...     def _draw(self, fig):
    ...         self._shown = fig.subplots().imshow(self.values(), cmap="viridis", vmin=0, vmax=1)
    ...     def _update(self):
    ...         self._shown.set_data(self.values())
    ...     def _dynamic_artists(self):
    ...         return [self._shown]
    ...     def _controls(self):
    ...         import ipywidgets
    ...         return [("seed", ipywidgets.IntSlider(value=self.seed, max=9, description="seed"))]
    >>> noise = Noise()
    >>> first = noise.png()
    >>> noise.set(seed=3).shape
    (8, 8)
    >>> noise.png() != first, noise.png()[:4]
    (True, b'\x89PNG')
    """

    #: Figure size in inches and resolution of the PNG.
    figsize = (8.0, 3.6)
    dpi = 80

    def __init__(self):
        self._figure = None
        self._canvas = None
        self._background = None
        self._view = None
        self._image_widget = None
        self._controls_list = None
        self._syncing = False

    # -- the figure ----------------------------------------------------------------------
    @property
    def figure(self):
        """The one matplotlib Figure of this widget (drawn on first use)."""
        if self._figure is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self._figure = Figure(figsize=self.figsize, dpi=self.dpi, layout="constrained")
            self._canvas = FigureCanvasAgg(self._figure)
            self._draw(self._figure)
        return self._figure

    def png(self) -> bytes:
        """The current state as PNG bytes (updates the artists first).

        The first render lays the figure out (constrained layout) and keeps a copy of
        everything except :meth:`_dynamic_artists`; later renders restore that copy
        and draw only the dynamic artists (blitting), until :meth:`_invalidate`.
        """
        from PIL import Image

        figure = self.figure
        self._update()
        dynamic = list(self._dynamic_artists())
        if self._background is None:
            for artist in dynamic:
                artist.set_animated(True)
            self._canvas.draw()
            if not isinstance(figure.get_layout_engine(), _placeholder_engine()):
                figure.set_layout_engine("none")  # keep the first layout: later renders are cheaper
            self._background = self._canvas.copy_from_bbox(figure.bbox)
        else:
            self._canvas.restore_region(self._background)
        for artist in dynamic:
            figure.draw_artist(artist)
        width, height = self._canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self._canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _invalidate(self):
        """Mark the static part of the figure as changed: the next render draws everything."""
        self._background = None

    def refresh(self) -> bytes:
        """Redraw after a change of state: update the artists, the controls and the image widget."""
        data = self.png()
        if self._image_widget is not None:
            self._image_widget.value = data
        if self._controls_list is not None:
            self._syncing = True
            try:
                self._sync_controls(dict(self._controls_list))
            finally:
                self._syncing = False
        return data

    # -- the view ------------------------------------------------------------------------
    def widget(self):
        """The ipywidgets view: labelled controls above the image (built once)."""
        if self._view is None:
            import ipywidgets

            self._controls_list = list(self._controls())
            for name, control in self._controls_list:
                control.observe(lambda change, name=name: self._on_change(name, change), names="value")
            self._image_widget = ipywidgets.Image(value=self.png(), format="png")
            self._view = ipywidgets.VBox([
                ipywidgets.HBox([control for _, control in self._controls_list]),
                self._image_widget,
            ])
        return self._view

    def _on_change(self, name, change):
        if self._syncing:
            return
        self.set(**{name: change["new"]})

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "image/png": base64.b64encode(self.png()).decode("ascii")}
        try:
            view = self.widget()._repr_mimebundle_(include=include, exclude=exclude) or {}
        except Exception:  # no kernel to talk to: the static image is shown alone
            view = {}
        for key, value in view.items():
            if key != "text/plain":
                bundle[key] = value
        return bundle

    # -- to implement --------------------------------------------------------------------
    def set(self, **choices):  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self, fig):  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _controls(self):  # pragma: no cover - abstract
        return []

    def _dynamic_artists(self):
        """Artists that change with the state; everything else is drawn once (see :meth:`png`)."""
        return []

    def _sync_controls(self, controls):
        return None


def _placeholder_engine():
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    return PlaceHolderLayoutEngine


def _choice(value, options, what):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, one of {', '.join(options)}; got {describe(value)}")
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(options)}")
    return value


class FeatureMapExplorer(Explorer):
    """Browse the channels of a backbone's feature maps on an image.

    Parameters
    ----------
    models : mapping or sequence of str
        ``{name: model}`` with names from :data:`segtutor.backbones.MODELS`; a
        model may be ``None`` (or the mapping a list of names): it is built with
        :func:`segtutor.backbones.build` when first chosen.
    images : mapping or ndarray
        ``{name: RGB image (H, W, 3)}``, or one image (named ``"image"``).
    model, stage, image : str, optional
        Initial choices (default: the first of each).
    channel : int
        Initial channel.
    size : int
        Images are resized (shorter side) and centre-cropped to ``size`` x
        ``size`` before the model sees them, as in ImageNet evaluation.

    Examples
    --------
    >>> from segtutor import backbones, data
    >>> explorer = FeatureMapExplorer({"resnet18": backbones.build("resnet18", weights="random")},
    ...                               {"chelsea": data.sample_image("chelsea")}, stage="layer2", size=128)
    >>> explorer.set(channel=5).shape, explorer.n_channels
    ((16, 16), 128)
    >>> explorer.png()[:4]
    b'\\x89PNG'
    """

    figsize = (8.4, 3.7)

    def __init__(self, models, images, *, model=None, stage=None, channel=0, image=None, size=224):
        from segtutor import backbones

        if isinstance(models, Mapping):
            self._models = dict(models)
        elif isinstance(models, (list, tuple)):
            self._models = {name: None for name in models}
        else:
            raise TypeError(f"models must be a dict {{name: model}} or a list of names, got {describe(models)}")
        if not self._models:
            raise ValueError("models is empty; give at least one backbone")
        for name in self._models:
            _choice(name, backbones.MODELS, "model")
        if isinstance(images, np.ndarray):
            images = {"image": images}
        if not isinstance(images, Mapping) or not images:
            raise TypeError(f"images must be a non-empty dict {{name: RGB image}}, got {describe(images)}")
        self._images = {}
        for name, array in images.items():
            array = np.asarray(array)
            if array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"images[{name!r}] must be an RGB image (H, W, 3); got shape {array.shape}")
            self._images[str(name)] = array
        self.size = as_int(size, "size", minimum=16)
        self._maps: dict = {}
        self._strides: dict = {}
        self.model_name = _choice(model, list(self._models), "model") if model is not None else next(iter(self._models))
        self.image_name = _choice(image, list(self._images), "image") if image is not None else next(iter(self._images))
        self.stage = self.stages[0]
        self.channel = 0
        super().__init__()
        self.set(stage=stage if stage is not None else self.stage, channel=channel)

    # -- state ---------------------------------------------------------------------------
    @property
    def stages(self) -> list:
        """Stage names of the current model."""
        from segtutor import backbones

        return list(backbones.STAGES[self.model_name])

    def model(self):
        """The current model (built on first use)."""
        from segtutor import backbones

        if self._models[self.model_name] is None:
            self._models[self.model_name] = backbones.build(self.model_name)
        return self._models[self.model_name]

    def input_image(self) -> np.ndarray:
        """The image the model sees (resized and cropped), as float RGB in [0, 1]."""
        from segtutor import backbones

        batch = backbones.to_batch(self._images[self.image_name], size=self.size)[0].numpy()
        mean = np.array(backbones.IMAGENET_MEAN, dtype=np.float32)[:, None, None]
        std = np.array(backbones.IMAGENET_STD, dtype=np.float32)[:, None, None]
        return np.clip(batch * std + mean, 0, 1).transpose(1, 2, 0)

    @property
    def maps(self) -> dict:
        """``{stage: float32 array (C, h, w)}`` of the current model on the current image (cached)."""
        from segtutor import backbones

        key = (self.model_name, self.image_name)
        if key not in self._maps:
            maps = backbones.feature_maps(self.model(), self._images[self.image_name], self.stages, size=self.size)
            self._maps[key] = {stage: tensor[0].numpy() for stage, tensor in maps.items()}
        return self._maps[key]

    @property
    def n_channels(self) -> int:
        """Channels of the current stage."""
        return int(self.maps[self.stage].shape[0])

    @property
    def current(self) -> np.ndarray:
        """The feature map on show: channel ``channel`` of stage ``stage``, shape (h, w)."""
        return self.maps[self.stage][self.channel]

    def set(self, *, model=None, stage=None, channel=None, image=None) -> np.ndarray:
        """Change any of the choices; returns the feature map now on show.

        A new model keeps the stage when it has one of that name (else its
        first stage) and the channel when it exists (else channel 0).
        """
        if model is not None:
            self.model_name = _choice(model, list(self._models), "model")
            if self.stage not in self.stages:
                self.stage = self.stages[0]
        if image is not None:
            self.image_name = _choice(image, list(self._images), "image")
        if stage is not None:
            self.stage = _choice(stage, self.stages, f"stage of {self.model_name}")
        if channel is not None:
            channel = as_int(channel, "channel", minimum=0)
            if channel >= self.n_channels:
                raise ValueError(
                    f"channel must be 0..{self.n_channels - 1} for {self.model_name} {self.stage}; got {channel}"
                )
            self.channel = channel
        elif self.channel >= self.n_channels:
            self.channel = 0
        if self._figure is not None:
            self.refresh()
        return self.current

    def title(self) -> str:
        """The text above the feature map."""
        from segtutor import backbones

        key = (self.model_name, self.stage)
        if key not in self._strides:
            geometry = backbones.layer_geometry(self.model(), [self.stage], size=self.size)[self.stage]
            self._strides[key] = geometry.stride[0]
        stride = self._strides[key]
        current = self.current
        h, w = current.shape
        weights = getattr(self.model(), "segtutor_weights", "")
        weights = f" ({weights.split(' (')[0]} weights)" if weights else ""
        return (f"{self.model_name}{weights} {self.stage}: channel {self.channel} of {self.n_channels}\n"
                f"{h} x {w} positions, one every {stride} px; values {current.min():.3g} to {current.max():.3g}")

    def __repr__(self):
        return (f"FeatureMapExplorer(model={self.model_name!r}, stage={self.stage!r}, channel={self.channel}, "
                f"image={self.image_name!r})")

    # -- drawing -------------------------------------------------------------------------
    def _draw(self, fig):
        self._ax_image, self._ax_map = fig.subplots(1, 2)
        self._shown_input = self._ax_image.imshow(self.input_image())
        self._ax_image.set_title("", fontsize=10)
        self._ax_image.set_axis_off()
        self._shown_map = self._ax_map.imshow(self.current, cmap="viridis", interpolation="nearest", vmin=0, vmax=1)
        self._ax_map.set_title(" \n ", fontsize=10)
        colorbar = fig.colorbar(self._shown_map, ax=self._ax_map, shrink=0.9)
        colorbar.set_label("activation, scaled to the channel's range", fontsize=9)
        colorbar.set_ticks([0, 1], labels=["min", "max"])
        self._ax_map.set_axis_off()  # the title gives the size and the values
        self._drawn_input = None

    def _dynamic_artists(self):
        return [self._shown_map, self._ax_map.title]

    def _update(self):
        key = (self.image_name, self.size)
        if self._drawn_input != key:
            self._shown_input.set_data(self.input_image())
            self._ax_image.set_title(f"input '{self.image_name}' ({self.size} x {self.size})", fontsize=10)
            self._drawn_input = key
            self._invalidate()
        current = self.current
        h, w = current.shape
        low, high = float(current.min()), float(current.max())
        self._shown_map.set_data((current - low) / (high - low) if high > low else np.zeros_like(current))
        self._shown_map.set_extent((-0.5, w - 0.5, h - 0.5, -0.5))
        self._ax_map.set_xlim(-0.5, w - 0.5)
        self._ax_map.set_ylim(h - 0.5, -0.5)
        self._ax_map.set_title(self.title(), fontsize=10)

    def _controls(self):
        import ipywidgets

        return [
            ("model", ipywidgets.Dropdown(options=list(self._models), value=self.model_name, description="model")),
            ("stage", ipywidgets.Dropdown(options=self.stages, value=self.stage, description="stage")),
            ("channel", ipywidgets.IntSlider(value=self.channel, min=0, max=self.n_channels - 1,
                                             description="channel", continuous_update=False)),
            ("image", ipywidgets.Dropdown(options=list(self._images), value=self.image_name, description="image")),
        ]

    def _sync_controls(self, controls):
        controls["stage"].options = self.stages
        controls["stage"].value = self.stage
        controls["channel"].max = self.n_channels - 1
        controls["channel"].value = self.channel
        controls["model"].value = self.model_name
        controls["image"].value = self.image_name


class DetectionExplorer(Explorer):
    """Mask R-CNN's detections on an image, with a score threshold and what to draw.

    Parameters
    ----------
    image : ndarray (H, W, 3)
    prediction : dict
        One image's detections from :func:`segtutor.maskrcnn.predict` (``boxes``,
        ``labels``, ``scores``, ``masks``).
    score_threshold : float
        Detections with a score below it are hidden.
    boxes, masks, labels : bool
        Draw the boxes, the masks (tinted, one colour per instance), the class
        and score labels.

    Examples
    --------
    >>> from segtutor import maskrcnn
    >>> scene = maskrcnn.instance_scenes(1, seed=3)[0]
    >>> truth = dict(scene, scores=np.linspace(1.0, 0.2, len(scene["labels"])))
    >>> explorer = DetectionExplorer(scene["image"], truth, score_threshold=0.5)
    >>> explorer.n_shown == int((truth["scores"] >= 0.5).sum())
    True
    >>> explorer.set(score_threshold=0.0, masks=False).shape
    (96, 96, 3)
    >>> explorer.n_shown == len(scene["labels"]), explorer.png()[:4]
    (True, b'\\x89PNG')
    """

    figsize = (4.6, 4.4)
    dpi = 90

    def __init__(self, image, prediction, *, score_threshold=0.5, boxes=True, masks=True, labels=True):
        from segtutor import maskrcnn

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be an RGB image (H, W, 3); got shape {image.shape}")
        if not isinstance(prediction, Mapping) or not {"boxes", "labels", "scores", "masks"} <= set(prediction):
            raise TypeError("prediction must be one image's dict from maskrcnn.predict "
                            "(boxes, labels, scores, masks)")
        scores = np.asarray(prediction["scores"], dtype=float).reshape(-1)
        pred_masks = np.asarray(prediction["masks"])
        if pred_masks.shape != (len(scores),) + image.shape[:2]:
            raise ValueError(f"prediction masks must have shape (N, H, W) = ({len(scores)}, {image.shape[0]}, "
                             f"{image.shape[1]}); got {pred_masks.shape}")
        self._maskrcnn = maskrcnn
        self.image = image
        self.scores = scores
        self.boxes_xyxy = maskrcnn.check_boxes(prediction["boxes"], "boxes")
        self.class_ids = np.asarray(prediction["labels"]).reshape(-1)
        self.pred_masks = pred_masks
        self.score_threshold = 0.5
        self.show_boxes = self.show_masks = self.show_labels = True
        super().__init__()
        self.set(score_threshold=score_threshold, boxes=boxes, masks=masks, labels=labels)

    # -- state ---------------------------------------------------------------------------
    @property
    def shown(self) -> np.ndarray:
        """Indices of the detections above the threshold."""
        return np.flatnonzero(self.scores >= self.score_threshold)

    @property
    def n_shown(self) -> int:
        return len(self.shown)

    def canvas(self) -> np.ndarray:
        """The image with the shown masks tinted (float RGB in [0, 1])."""
        return self._maskrcnn.overlay_instances(self.image, self.pred_masks if self.show_masks else None, self.shown)

    def set(self, *, score_threshold=None, boxes=None, masks=None, labels=None) -> np.ndarray:
        """Change the threshold or what is drawn; returns the tinted image on show."""
        from segtutor._checks import as_float

        if score_threshold is not None:
            self.score_threshold = as_float(score_threshold, "score_threshold", minimum=0, maximum=1)
        for name, value in (("boxes", boxes), ("masks", masks), ("labels", labels)):
            if value is not None:
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"{name} must be True or False, got {describe(value)}")
                setattr(self, f"show_{name}", bool(value))
        if self._figure is not None:
            self.refresh()
        return self.canvas()

    def __repr__(self):
        return (f"DetectionExplorer(score_threshold={self.score_threshold:g}, boxes={self.show_boxes}, "
                f"masks={self.show_masks}, labels={self.show_labels}; {self.n_shown} of {len(self.scores)} shown)")

    # -- drawing -------------------------------------------------------------------------
    def _draw(self, fig):
        from matplotlib.patches import Rectangle

        maskrcnn = self._maskrcnn
        self._ax = fig.subplots()
        self._shown_image = self._ax.imshow(self.canvas(), interpolation="nearest")
        self._ax.set_xticks([])
        self._ax.set_yticks([])
        self._patches, self._texts = [], []
        for k, (x0, y0, x1, y1) in enumerate(self.boxes_xyxy):
            patch = Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5)
            self._ax.add_patch(patch)
            text = self._ax.text(x0 - 0.5, y0 - 1.0, f"{maskrcnn.CLASS_NAMES[int(self.class_ids[k])]} "
                                 f"{self.scores[k]:.2f}", fontsize=7, va="bottom",
                                 bbox={"edgecolor": "none", "pad": 1, "alpha": 0.9})
            self._patches.append(patch)
            self._texts.append(text)

    def _update(self):
        maskrcnn = self._maskrcnn
        self._shown_image.set_data(self.canvas())
        rank = {int(k): r for r, k in enumerate(self.shown)}
        for k, (patch, text) in enumerate(zip(self._patches, self._texts)):
            on = k in rank
            color = maskrcnn.instance_color(rank.get(k, 0))
            patch.set_edgecolor(color)
            text.get_bbox_patch().set_facecolor(color)
            text.set_color(maskrcnn.text_color(color))
            patch.set_visible(on and self.show_boxes)
            text.set_visible(on and self.show_labels)
        self._ax.set_title(f"{self.n_shown} of {len(self.scores)} detections with score >= "
                           f"{self.score_threshold:.2f}", fontsize=10)

    def _dynamic_artists(self):
        return [self._shown_image, *self._patches, *self._texts, self._ax.title]

    def _controls(self):
        import ipywidgets

        return [
            ("score_threshold", ipywidgets.FloatSlider(value=self.score_threshold, min=0.0, max=1.0, step=0.05,
                                                       description="min score", continuous_update=False)),
            ("boxes", ipywidgets.Checkbox(value=self.show_boxes, description="boxes")),
            ("masks", ipywidgets.Checkbox(value=self.show_masks, description="masks")),
            ("labels", ipywidgets.Checkbox(value=self.show_labels, description="labels")),
        ]

    def _sync_controls(self, controls):
        controls["score_threshold"].value = self.score_threshold
        controls["boxes"].value = self.show_boxes
        controls["masks"].value = self.show_masks
        controls["labels"].value = self.show_labels


# -- lessons 00-02 -----------------------------------------------------------------------------

#: Okabe–Ito: a categorical palette that stays distinct under the common colour-vision deficiencies.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")


def _okabe_ito_rgb(n: int) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return np.array([to_rgb(OKABE_ITO[i % len(OKABE_ITO)]) for i in range(n)])


def _gray2d(image, name="image") -> np.ndarray:
    array = np.asarray(image, dtype=float)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a grayscale (H, W) or RGB (H, W, 3) image, got shape {array.shape}")
    return array


class ThresholdExplorer(Explorer):
    """Move a threshold over the histogram and see the mask, and its IoU, change (lesson 01).

    Parameters
    ----------
    image : array-like, (H, W) or (H, W, 3)
        The image (an RGB image is averaged to gray).
    truth : array-like of bool, (H, W), optional
        Ground-truth foreground; the IoU of the mask with it is shown.
    threshold : float, optional
        Initial threshold (default: Otsu's).

    Examples
    --------
    >>> from segtutor import data
    >>> image, truth = data.make_gray_scene(size=64, seed=1)
    >>> explorer = ThresholdExplorer(image, truth)
    >>> mask = explorer.set(threshold=explorer.low)  # everything above the minimum
    >>> bool(mask.mean() > 0.99), explorer.iou < 0.5
    (True, True)
    """

    figsize = (9.6, 3.2)

    def __init__(self, image, truth=None, threshold=None):
        from segtutor import classical

        array = np.asarray(image)
        # keep an integer image as it is: its Otsu threshold is computed on its own values
        self.image = array if array.ndim == 2 and array.dtype.kind in "iub" else _gray2d(image)
        self.truth = None if truth is None else np.asarray(truth, dtype=bool)
        if self.truth is not None and self.truth.shape != self.image.shape:
            raise ValueError(f"truth must have the image's shape {self.image.shape}, got {self.truth.shape}")
        self.low, self.high = float(self.image.min()), float(self.image.max())
        self.counts, self.centers = classical.histogram(self.image)
        self.threshold = float(classical.otsu_threshold(self.image) if threshold is None else threshold)
        self.mask = self.image > self.threshold
        self.iou = float("nan")
        super().__init__()
        self.set(threshold=self.threshold)

    def set(self, threshold=None):
        """Move the threshold; returns the new mask (``image > threshold``)."""
        if threshold is not None:
            if isinstance(threshold, bool) or not np.isscalar(threshold) or not np.isfinite(threshold):
                raise ValueError(f"threshold must be a finite number in [{self.low:g}, {self.high:g}], got {threshold!r}")
            self.threshold = float(np.clip(threshold, self.low, self.high))
        from segtutor import metrics

        self.mask = self.image > self.threshold
        self.iou = metrics.iou(self.mask, self.truth) if self.truth is not None else float("nan")
        if self._figure is not None:
            self.refresh()
        return self.mask

    def _draw(self, fig):
        ax_hist, ax_image, ax_mask = fig.subplots(1, 3)
        width = float(self.centers[1] - self.centers[0]) if len(self.centers) > 1 else 1.0
        ax_hist.bar(self.centers, self.counts, width=width, color="0.45")
        ax_hist.set_xlabel("intensity")
        ax_hist.set_ylabel("pixels")
        ax_hist.set_title("histogram")
        self._line = ax_hist.axvline(self.threshold, color=OKABE_ITO[5], linewidth=2)
        ax_image.imshow(self.image, cmap="gray")
        ax_image.set_title("image")
        ax_image.set_axis_off()
        self._mask_artist = ax_mask.imshow(self.mask, cmap="cividis", vmin=0, vmax=1, interpolation="nearest")
        ax_mask.set_axis_off()
        self._title = ax_mask.set_title("")

    def _update(self):
        self._line.set_xdata([self.threshold, self.threshold])
        self._mask_artist.set_data(self.mask)
        text = f"mask: image > {self.threshold:.3g}"
        if self.truth is not None:
            text += f"\nIoU with the truth {self.iou:.2f}"
        self._title.set_text(text)

    def _dynamic_artists(self):
        return [self._line, self._mask_artist, self._title]

    def _controls(self):
        import ipywidgets

        step = (self.high - self.low) / 200 if self.high > self.low else 1.0
        return [("threshold", ipywidgets.FloatSlider(
            value=self.threshold, min=self.low, max=self.high, step=step, description="threshold",
            continuous_update=True, readout_format=".3g"))]


class LocalThresholdExplorer(Explorer):
    """Block size and offset of a local threshold on an unevenly lit image (lesson 01).

    Examples
    --------
    >>> from segtutor import data
    >>> image, truth = data.make_gray_scene(size=64, gradient=0.6, seed=2)
    >>> explorer = LocalThresholdExplorer(image, truth, block_size=31, offset=-0.1)
    >>> explorer.set(block_size=15).shape, round(explorer.iou, 2) > 0
    ((64, 64), True)
    """

    figsize = (7.2, 3.4)

    def __init__(self, image, truth, block_size=51, offset=-0.1):
        self.image = _gray2d(image)
        self.truth = np.asarray(truth, dtype=bool)
        if self.truth.shape != self.image.shape:
            raise ValueError(f"truth must have the image's shape {self.image.shape}, got {self.truth.shape}")
        self.block_size, self.offset = 3, 0.0
        super().__init__()
        self.set(block_size=block_size, offset=offset)

    def set(self, block_size=None, offset=None):
        """Change the block size (odd, >= 3) and/or the offset; returns the new mask."""
        from segtutor import classical, metrics

        if block_size is not None:
            size = as_int(block_size, "block_size", minimum=3)
            if size % 2 == 0:
                raise ValueError(f"block_size must be odd (the block is centred on the pixel), got {size}")
            self.block_size = size
        if offset is not None:
            if isinstance(offset, bool) or not np.isscalar(offset) or not np.isfinite(offset):
                raise ValueError(f"offset must be a finite number, got {offset!r}")
            self.offset = float(offset)
        self.mask = self.image > classical.local_threshold(self.image, block_size=self.block_size, offset=self.offset)
        self.iou = metrics.iou(self.mask, self.truth)
        if self._figure is not None:
            self.refresh()
        return self.mask

    def _draw(self, fig):
        ax_image, ax_mask = fig.subplots(1, 2)
        ax_image.imshow(self.image, cmap="gray")
        ax_image.set_title("uneven lighting")
        ax_image.set_axis_off()
        self._mask_artist = ax_mask.imshow(self.mask, cmap="cividis", vmin=0, vmax=1, interpolation="nearest")
        ax_mask.set_axis_off()
        self._title = ax_mask.set_title("")

    def _update(self):
        self._mask_artist.set_data(self.mask)
        self._title.set_text(f"block {self.block_size}, offset {self.offset:+.2f}: IoU {self.iou:.2f}")

    def _dynamic_artists(self):
        return [self._mask_artist, self._title]

    def _controls(self):
        import ipywidgets

        return [
            ("block_size", ipywidgets.IntSlider(value=self.block_size, min=3, max=151, step=2,
                                                description="block size")),
            ("offset", ipywidgets.FloatSlider(value=self.offset, min=-0.3, max=0.3, step=0.01,
                                              description="offset")),
        ]


class KMeansExplorer(Explorer):
    """k and the weight of pixel position for k-means, with the segmentation's mIoU (lesson 02).

    Clusters are drawn in their mean colour (clusters are not classes); the mIoU
    is computed after matching clusters to classes one to one (Hungarian matching).

    Examples
    --------
    >>> from segtutor import data
    >>> image, labels = data.make_scene(size=48, seed=3)
    >>> explorer = KMeansExplorer(image, labels, num_classes=4, k=4)
    >>> int(explorer.set(k=2).max()) <= 1, 0 <= explorer.miou <= 1
    (True, True)
    """

    figsize = (7.2, 3.4)

    def __init__(self, image, labels, num_classes, k=4, position_weight=0.0, seed=0):
        self.image = np.asarray(image, dtype=float)
        if self.image.ndim != 3 or self.image.shape[-1] != 3:
            raise ValueError(f"image must be an RGB image (H, W, 3), got shape {self.image.shape}")
        self.labels = np.asarray(labels)
        if self.labels.shape != self.image.shape[:2]:
            raise ValueError(f"labels must have shape {self.image.shape[:2]}, got {self.labels.shape}")
        self.num_classes = as_int(num_classes, "num_classes", minimum=1)
        self.seed = seed
        self.k, self.position_weight = 2, 0.0
        super().__init__()
        self.set(k=k, position_weight=position_weight)

    def set(self, k=None, position_weight=None):
        """Change k (2..12) and/or the position weight (>= 0); returns the cluster map."""
        from segtutor import cluster, metrics

        if k is not None:
            self.k = as_int(k, "k", minimum=2, maximum=12)
        if position_weight is not None:
            if isinstance(position_weight, bool) or not np.isscalar(position_weight) \
                    or not np.isfinite(position_weight) or position_weight < 0:
                raise ValueError(f"position_weight must be a number >= 0, got {position_weight!r}")
            self.position_weight = float(position_weight)
        # Fit on a fixed sample of at most 2048 pixels, then give every pixel its nearest
        # centre: the same clusters for a large image, at a fraction of the cost.
        features = cluster.pixel_features(self.image, use_position=self.position_weight > 0,
                                          position_weight=self.position_weight or 1.0)
        sample = features[self._sample(len(features))]
        centers = cluster.kmeans(sample, self.k, seed=self.seed).centers
        self.clusters = cluster.assign_labels(features, centers).reshape(self.image.shape[:2])
        matched = cluster.match_clusters(self.clusters, self.labels, num_classes=self.num_classes)
        self.miou = metrics.mean_iou(matched, self.labels, num_classes=self.num_classes)
        if self._figure is not None:
            self.refresh()
        return self.clusters

    def _sample(self, n: int) -> np.ndarray:
        if n <= 2048:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, 2048, replace=False))

    def _mean_colours(self) -> np.ndarray:
        out = np.zeros_like(self.image)
        for c in np.unique(self.clusters):
            where = self.clusters == c
            out[where] = self.image[where].mean(axis=0)
        return np.clip(out, 0, 1)

    def _draw(self, fig):
        ax_image, ax_clusters = fig.subplots(1, 2)
        ax_image.imshow(np.clip(self.image, 0, 1))
        ax_image.set_title("image")
        ax_image.set_axis_off()
        self._clusters_artist = ax_clusters.imshow(self._mean_colours(), interpolation="nearest")
        ax_clusters.set_axis_off()
        self._title = ax_clusters.set_title("")

    def _update(self):
        self._clusters_artist.set_data(self._mean_colours())
        where = "colour + position" if self.position_weight > 0 else "colour only"
        weight = f" (weight {self.position_weight:.1f})" if self.position_weight > 0 else ""
        self._title.set_text(f"k = {self.k}, {where}{weight}: mIoU {self.miou:.2f}")

    def _dynamic_artists(self):
        return [self._clusters_artist, self._title]

    def _controls(self):
        import ipywidgets

        return [
            ("k", ipywidgets.IntSlider(value=self.k, min=2, max=12, description="k")),
            ("position_weight", ipywidgets.FloatSlider(value=self.position_weight, min=0.0, max=3.0, step=0.1,
                                                       description="position weight")),
        ]


class LabelMapExplorer(Explorer):
    """A scene's class map and instance map, one pixel inspected, and IoU under a shift (lesson 00).

    Pick a pixel with the row and column sliders to read its class and instance;
    switch between the semantic and the instance view (classes and instances in
    distinct colour schemes); shift a copy of the largest object's mask to see how
    fast IoU falls (the object, the copy and their overlap in three shades).

    Parameters
    ----------
    scene : dict
        From :func:`segtutor.data.make_instance_scene` (``image``, ``masks``, ``labels``).
    class_names : sequence of str, optional
        Names of the class ids.

    Examples
    --------
    >>> from segtutor import data
    >>> explorer = LabelMapExplorer(data.make_instance_scene(size=64, seed=0))
    >>> _ = explorer.set(shift=0); explorer.iou
    1.0
    >>> _ = explorer.set(shift=4); explorer.iou < 1
    True
    >>> _ = explorer.set(view="instance"); explorer.pixel_instance == explorer.object + 1
    True
    """

    figsize = (9.6, 3.4)

    def __init__(self, scene, class_names=None):
        try:
            self.image = np.asarray(scene["image"], dtype=float)
            masks = np.asarray(scene["masks"], dtype=bool)
            classes = np.asarray(scene["labels"]).reshape(-1)
        except (KeyError, TypeError, IndexError):
            raise TypeError("scene must be a dict from segtutor.data.make_instance_scene "
                            "(keys 'image', 'masks', 'labels')") from None
        if masks.ndim != 3 or masks.shape[1:] != self.image.shape[:2] or len(classes) != len(masks):
            raise ValueError("scene['masks'] must be (N, H, W) boolean masks, one per label, of the image's size")
        if not len(masks):
            raise ValueError("the scene has no objects to explore")
        self.masks, self.classes = masks, classes
        self.semantic = np.zeros(self.image.shape[:2], dtype=np.int64)
        self.instances = np.zeros(self.image.shape[:2], dtype=np.int64)
        for i, (mask, c) in enumerate(zip(masks, classes)):
            self.semantic[mask] = c
            self.instances[mask] = i + 1
        if class_names is None:
            from segtutor import data

            class_names = getattr(data, "CLASS_NAMES", None)
        self.class_names = list(class_names) if class_names is not None else None
        self.view, self.row, self.col, self.shift = "semantic", 0, 0, 0
        self.object = int(np.argmax(masks.sum(axis=(1, 2))))  # the largest object shows the shift best
        cy, cx = np.argwhere(masks[self.object]).mean(axis=0).round().astype(int)
        super().__init__()
        self.set(row=cy, col=cx, shift=0)

    def _name(self, c: int) -> str:
        if c == 0:
            return "background"
        if self.class_names and c < len(self.class_names):
            return self.class_names[c]
        return f"class {c}"

    def set(self, view=None, row=None, col=None, shift=None):
        """Change the view, the inspected pixel or the shift; returns the map shown."""
        height, width = self.semantic.shape
        if view is not None:
            self.view = _choice(view, ("semantic", "instance"), "view")
        if row is not None:
            self.row = as_int(row, "row", minimum=0, maximum=height - 1)
        if col is not None:
            self.col = as_int(col, "col", minimum=0, maximum=width - 1)
        if shift is not None:
            self.shift = as_int(shift, "shift", minimum=0, maximum=max(1, width // 2))
        from segtutor import metrics

        mask = self.masks[self.object]
        moved = np.zeros_like(mask)
        moved[:, self.shift:] = mask[:, :width - self.shift] if self.shift else mask
        self.moved = moved
        self.iou = metrics.iou(mask, moved)
        self.pixel_class = int(self.semantic[self.row, self.col])
        self.pixel_instance = int(self.instances[self.row, self.col])
        if self._figure is not None:
            self.refresh()
        return self.semantic if self.view == "semantic" else self.instances

    def _map_rgb(self) -> np.ndarray:
        from segtutor import viz

        if self.view == "semantic":
            return viz.label_to_rgb(self.semantic) / 255.0
        colours = np.vstack([[0.92, 0.92, 0.92], _okabe_ito_rgb(len(self.masks))])
        return colours[self.instances]

    def _draw(self, fig):
        ax_image, ax_map, ax_iou = fig.subplots(1, 3)
        ax_image.imshow(np.clip(self.image, 0, 1))
        ax_image.set_title("image")
        ax_image.set_axis_off()
        self._map_artist = ax_map.imshow(self._map_rgb(), interpolation="nearest")
        self._marker = ax_map.plot([self.col], [self.row], marker="+", color="black", markersize=14, mew=2)[0]
        ax_map.set_axis_off()
        self._map_title = ax_map.set_title("")
        self._iou_artist = ax_iou.imshow(self.masks[self.object].astype(int) + 2 * self.moved, cmap="cividis",
                                         vmin=0, vmax=3, interpolation="nearest")
        ax_iou.set_axis_off()
        self._iou_title = ax_iou.set_title("")

    def _update(self):
        self._map_artist.set_data(self._map_rgb())
        self._marker.set_data([self.col], [self.row])
        where = f"pixel ({self.row}, {self.col}): {self._name(self.pixel_class)}"
        where += f", object {self.pixel_instance}" if self.pixel_instance else ""
        self._map_title.set_text(f"{self.view} map\n{where}")
        self._iou_artist.set_data(self.masks[self.object].astype(int) + 2 * self.moved)
        self._iou_title.set_text(f"object {self.object + 1} and a copy shifted {self.shift} px right\n"
                                 f"IoU {self.iou:.2f}")

    def _dynamic_artists(self):
        return [self._map_artist, self._marker, self._map_title, self._iou_artist, self._iou_title]

    def _controls(self):
        import ipywidgets

        height, width = self.semantic.shape
        return [
            ("view", ipywidgets.ToggleButtons(options=["semantic", "instance"], value=self.view, description="view")),
            ("row", ipywidgets.IntSlider(value=self.row, min=0, max=height - 1, description="row")),
            ("col", ipywidgets.IntSlider(value=self.col, min=0, max=width - 1, description="column")),
            ("shift", ipywidgets.IntSlider(value=self.shift, min=0, max=max(1, width // 2), description="shift")),
        ]


class FCNExplorer(Explorer):
    """Validation scenes through several FCNs side by side, one scene at a time (lesson 04).

    Panels: the scene with its ground truth, then each model's prediction (class
    colours of :data:`segtutor.viz.PALETTE`), titled with that scene's mIoU and
    boundary F-score. A slider picks the scene; a check box enlarges the window
    with the most true boundary pixels. Predictions are computed once, when the
    explorer is made.

    Parameters
    ----------
    models : mapping
        ``{name: FCN}``, or the runs of :func:`segtutor.fcn.train_variants`
        (``{"32s": {"model": ...}, ...}``; names become ``"FCN-32s"``, ...).
    images : ndarray (N, H, W, 3)
        Float in [0, 1] or uint8.
    labels : ndarray (N, H, W)
        The true class of every pixel, 0..3.
    index : int
        Scene shown first.
    zoom : bool
        Start enlarged on the boundaries.

    Examples
    --------
    >>> from segtutor import fcn
    >>> images, labels = fcn.scenes(3, seed=2)
    >>> explorer = FCNExplorer({"untrained": fcn.build_model()}, images, labels)
    >>> explorer.set(index=2).shape
    (1, 96, 96)
    >>> explorer.png()[:4]
    b'\\x89PNG'
    """

    figsize = (9.6, 3.0)

    def __init__(self, models, images, labels, *, index=0, zoom=False):
        from segtutor import fcn, metrics

        if not isinstance(models, Mapping) or not models:
            raise TypeError(f"models must be a non-empty dict {{name: FCN}} or the runs of "
                            f"fcn.train_variants, got {describe(models)}")
        named = {}
        for name, value in models.items():
            if isinstance(value, Mapping) and "model" in value:
                name, value = f"FCN-{name}", value["model"]
            if not hasattr(value, "forward"):
                raise TypeError(f"models[{name!r}] must be an FCN (torch.nn.Module), got {describe(value)}")
            named[str(name)] = value
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
            raise ValueError(f"images must be a non-empty stack of RGB images (N, H, W, 3); got shape {images.shape}")
        if labels.shape != images.shape[:3]:
            raise ValueError(f"labels must have shape {images.shape[:3]} (one label map per image); got {labels.shape}")
        self.images, self.labels = images, labels.astype(np.int64)
        self.names = list(named)
        self.predictions = np.stack([fcn.predict(model, images) for model in named.values()], axis=1)
        num_classes = int(max(self.labels.max(), self.predictions.max())) + 1
        self.scores = np.array([[(metrics.mean_iou(p, t, num_classes), metrics.boundary_f1(p, t))
                                 for p in preds] for preds, t in zip(self.predictions, self.labels)])
        self.index = 0
        self.zoom = False
        super().__init__()
        self.set(index=index, zoom=zoom)

    @property
    def n_images(self) -> int:
        return len(self.images)

    def set(self, *, index=None, zoom=None) -> np.ndarray:
        """Pick the scene and the zoom; returns the predictions on show, (models, H, W)."""
        if index is not None:
            index = as_int(index, "index", minimum=0)
            if index >= self.n_images:
                raise ValueError(f"index must be 0..{self.n_images - 1}; got {index}")
            self.index = index
        if zoom is not None:
            if not isinstance(zoom, (bool, np.bool_)):
                raise TypeError(f"zoom must be True or False, got {describe(zoom)}")
            if bool(zoom) != self.zoom and self._figure is not None:
                self._invalidate()  # the axes' limits change
            self.zoom = bool(zoom)
        if self._figure is not None:
            self.refresh()
        return self.predictions[self.index]

    def window(self):
        """``(top, left, height, width)`` of the enlarged window of the current scene."""
        from segtutor.fcn import boundary_window

        return boundary_window(self.labels[self.index], 20)

    def _rgb(self, labels):
        from segtutor import viz

        if getattr(self, "_image_index", None) != self.index:
            self._image = viz.as_rgb_float(self.images[self.index]).astype(np.float32)
            self._image_index = self.index
        colours = (viz.PALETTE[np.clip(labels, 0, len(viz.PALETTE) - 1)] / np.float32(255)).astype(np.float32)
        return np.where((labels > 0)[..., None], 0.4 * self._image + 0.6 * colours, self._image)

    def __repr__(self):
        return f"FCNExplorer(models={self.names}, scene {self.index} of {self.n_images}, zoom={self.zoom})"

    def _draw(self, fig):
        from matplotlib.patches import Patch

        from segtutor import data, viz

        axes = fig.subplots(1, len(self.names) + 1)
        self._axes = list(np.ravel(axes))
        self._shown = []
        for ax in self._axes:
            self._shown.append(ax.imshow(self._rgb(self.labels[self.index]), interpolation="nearest"))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(" \n ", fontsize=9)
        handles = [Patch(facecolor=viz.PALETTE[c] / 255, label=name) for c, name in enumerate(data.CLASS_NAMES)
                   if c > 0]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)

    def _dynamic_artists(self):
        return self._shown + [ax.title for ax in self._axes]

    def _update(self):
        panels = [self.labels[self.index]] + list(self.predictions[self.index])
        titles = [f"scene {self.index}: ground truth\n "] + [
            f"{name}\nmIoU {miou:.2f}, boundary F {bf:.2f}"
            for name, (miou, bf) in zip(self.names, self.scores[self.index])]
        top, left, height, width = self.window() if self.zoom else (0, 0) + self.labels.shape[1:]
        for ax, shown, labels, title in zip(self._axes, self._shown, panels, titles):
            shown.set_data(self._rgb(labels))
            ax.set_title(title, fontsize=9)
            ax.set_xlim(left - 0.5, left + width - 0.5)
            ax.set_ylim(top + height - 0.5, top - 0.5)

    def _controls(self):
        import ipywidgets

        return [
            ("index", ipywidgets.IntSlider(value=self.index, min=0, max=self.n_images - 1, description="scene")),
            ("zoom", ipywidgets.Checkbox(value=self.zoom, description="zoom on boundaries")),
        ]

    def _sync_controls(self, controls):
        controls["index"].value = self.index
        controls["zoom"].value = self.zoom


class WeakLabelExplorer(Explorer):
    """Training scenes with their boxes, each kind of pseudo-mask and the truth, one scene at a time (lesson 05).

    Panels: the scene with its boxes (yellow frames), then each pseudo-mask tinted over
    the scene (ignored pixels striped grey, :func:`segtutor.weak.tinted`), titled with
    its mIoU against the truth on the pixels it labels and the share it labels, and
    last the true label map. A slider picks the scene.

    Parameters
    ----------
    scenes : dict
        From :func:`segtutor.weak.instance_scenes`: ``images``, ``truth``, ``boxes``.
    pseudo : mapping
        ``{name: label maps (N, H, W)}``, with 255 where a pseudo-mask is unsure.
    index : int
        Scene shown first.

    Examples
    --------
    >>> from segtutor import weak
    >>> scenes = weak.instance_scenes(2, seed=5)
    >>> explorer = WeakLabelExplorer(scenes, {"filled box": weak.pseudo_labels(scenes, "box")})
    >>> explorer.set(index=1).shape
    (1, 96, 96)
    >>> explorer.png()[:4]
    b'\\x89PNG'
    """

    figsize = (9.6, 2.8)

    def __init__(self, scenes, pseudo, *, index=0):
        from segtutor import weak

        if not isinstance(scenes, Mapping) or not {"images", "truth", "boxes"} <= set(scenes):
            raise TypeError(f"scenes must be the dict of weak.instance_scenes (images, truth, boxes), "
                            f"got {describe(scenes)}")
        if not isinstance(pseudo, Mapping) or not pseudo:
            raise TypeError(f"pseudo must be a non-empty dict {{name: label maps (N, H, W)}}, got {describe(pseudo)}")
        self.images = np.asarray(scenes["images"])
        self.truth = np.asarray(scenes["truth"])
        self.boxes = [weak.check_boxes(b, self.images.shape[1:3]) for b in scenes["boxes"]]
        if self.images.ndim != 4 or len(self.images) == 0 or self.truth.shape != self.images.shape[:3]:
            raise ValueError(f"scenes must hold images (N, H, W, 3) and truth (N, H, W); got "
                             f"{self.images.shape} and {self.truth.shape}")
        self.names = [str(name) for name in pseudo]
        maps = []
        for name, value in pseudo.items():
            value = np.asarray(value)
            if value.shape != self.truth.shape:
                raise ValueError(f"pseudo[{name!r}] must have shape {self.truth.shape}, got {value.shape}")
            maps.append(value)
        self.pseudo = np.stack(maps, axis=1)
        self.scores = [[weak.pseudo_label_scores(p, t) if (p != weak.IGNORE_INDEX).any() else None
                        for p in per_scene] for per_scene, t in zip(self.pseudo, self.truth)]
        height, width = self.images.shape[1:3]
        panel = self.figsize[0] / (len(self.names) + 2)  # the height of square panels, plus titles and legend
        self.figsize = (self.figsize[0], round(0.95 * panel * height / width + 1.05, 2))
        self.index = 0
        super().__init__()
        self.set(index=index)

    @property
    def n_images(self) -> int:
        return len(self.images)

    def set(self, *, index=None) -> np.ndarray:
        """Pick the scene; returns its pseudo-masks, (kinds, H, W)."""
        if index is not None:
            index = as_int(index, "index", minimum=0)
            if index >= self.n_images:
                raise ValueError(f"index must be 0..{self.n_images - 1}; got {index}")
            self.index = index
        if self._figure is not None:
            self.refresh()
        return self.pseudo[self.index]

    def _with_boxes(self):
        image = np.asarray(self.images[self.index], dtype=float)
        image = image / 255 if self.images.dtype == np.uint8 else image.copy()
        yellow = (0.94, 0.89, 0.26)  # Okabe-Ito yellow
        for x0, y0, x1, y1 in self.boxes[self.index]:
            image[y0, x0:x1] = image[y1 - 1, x0:x1] = yellow
            image[y0:y1, x0] = image[y0:y1, x1 - 1] = yellow
        return image

    def __repr__(self):
        return f"WeakLabelExplorer(pseudo={self.names}, scene {self.index} of {self.n_images})"

    def _draw(self, fig):
        from segtutor import weak

        axes = fig.subplots(1, len(self.names) + 2)
        self._axes = list(np.ravel(axes))
        self._shown = []
        blank = np.zeros(self.images.shape[1:3] + (3,))
        for ax in self._axes:
            self._shown.append(ax.imshow(blank, interpolation="nearest"))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(" \n ", fontsize=9)
        fig.legend(handles=_weak_legend(), loc="outside lower center",
                   ncols=4, fontsize=8, frameon=False)

    def _update(self):
        from segtutor import weak

        image = self.images[self.index]
        pictures = [self._with_boxes()] + [weak.tinted(image, p) for p in self.pseudo[self.index]]
        pictures.append(weak.tinted(image, self.truth[self.index]))
        titles = [f"scene {self.index}: image, boxes\n "]
        for name, score in zip(self.names, self.scores[self.index]):
            titles.append(f"{name}\n" + (f"mIoU {score['miou']:.2f}, {score['labelled']:.0%} labelled"
                                         if score else "nothing labelled"))
        titles.append("true masks\n ")
        for ax, shown, picture, title in zip(self._axes, self._shown, pictures, titles):
            shown.set_data(picture)
            ax.set_title(title, fontsize=9)

    def _dynamic_artists(self):
        # every title has two lines, so the first layout fits every scene's titles
        return self._shown + [ax.title for ax in self._axes]

    def _controls(self):
        import ipywidgets

        return [("index", ipywidgets.IntSlider(value=self.index, min=0, max=self.n_images - 1, description="scene"))]

    def _sync_controls(self, controls):
        controls["index"].value = self.index


def _weak_legend():
    """Legend handles of :class:`WeakLabelExplorer`: the object classes and the ignored pixels."""
    from matplotlib.patches import Patch

    from segtutor import data, viz

    handles = [Patch(facecolor=viz.PALETTE[c] / 255, label=name) for c, name in enumerate(data.CLASS_NAMES) if c]
    handles.append(Patch(facecolor="0.55", edgecolor="white", hatch="////", label="ignored (255)"))
    return handles

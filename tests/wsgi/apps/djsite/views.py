from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


class PersonForm(forms.Form):
    name = forms.CharField(max_length=50)
    age = forms.IntegerField(min_value=0, max_value=150)


def index(request):
    return HttpResponse("Django says hello\n", content_type="text/plain")


def form(request):
    if request.method == "POST":
        f = PersonForm(request.POST)
        if f.is_valid():
            return HttpResponse("Thanks, %s (age %d)\n" % (f.cleaned_data["name"], f.cleaned_data["age"]),
                                content_type="text/plain")
        status = 400
    else:
        f = PersonForm()
        status = 200
    return render(request, "form.html", {"form": f}, status=status)


def hello(request, name):
    r = HttpResponse("hello %s\n" % name, content_type="text/plain; charset=utf-8")
    r.set_cookie("seen", name.encode("utf-8").hex())
    return r


def boom(request):
    raise RuntimeError("deliberate failure in djsite")


def headers(request):
    return JsonResponse({"agent": request.META.get("HTTP_X_CUSTOM"), "method": request.method,
                         "query": request.GET.dict(), "script": request.META.get("SCRIPT_NAME")})
